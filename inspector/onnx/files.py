"""Open an ONNX file we were given: refuse what is not a sound model before anything runs it.

The checker works by path, so it sees external-data locations (`../`, absolute, symlinks, hard
links) and files past protobuf's 2 GB limit; onnxruntime must only ever see a file that passed it.
Both the checker and a first onnxruntime load run in a child process: they are native code, and a
crafted file that crashes them should end in an error naming the file, not in a dead CLI.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import pickle
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ExitStatus, InspectorError, naming_flags, on_command_line
from ..util.files import existing_file
from ..util.text import first_line

# The child imports this very module from the same package folder, and nothing heavier than onnx
# and onnxruntime (never torch): it costs a Python start-up and those two imports.
_CHILD_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from inspector.onnx.files import _child_main; "
    "_child_main(sys.argv[2], sys.argv[3], sys.argv[4:] == ['flags'])"
)
_STAGE_NAMES = {"checker": "the onnx checker", "onnxruntime": "onnxruntime"}
_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

# Digests of the files this process wrote and checked itself (an export) or found intact in its own
# export cache: verify right after an export would otherwise start a child (about 0.3 s) to check
# bytes we checked a moment ago. A file changed since has another digest and is checked again.
_VOUCHED: set[str] = set()


def check_onnx_file(path, *, runtime: bool = True, warnings: list | None = None) -> Path:
    """Return the path of a readable, valid ONNX model, or raise InspectorError saying why not.

    Call this before giving a file to onnxruntime. It runs the onnx checker by path and, with
    `runtime=True`, a first onnxruntime load, both in a child process. A file that passes the
    checker's structural and safety checks (external-data paths included) but fails its strict
    shape inference is not refused: shape inference can be stricter than the operators' own
    semantics (onnx's `test_mvn`, whose function body onnxruntime runs), and onnxruntime
    still judges the file. That disagreement goes to `warnings`, when given.
    """
    path = existing_file(path, "ONNX file")
    if _VOUCHED and file_digest(path) in _VOUCHED:
        return path
    problem, said, _ = _check_in_child(path, "runtime" if runtime else "checker")
    if problem:
        raise InspectorError(problem)
    if warnings is not None:
        warnings += said
    return path


def run_checked(path, work: str, arguments: tuple = (), *, warnings: list | None = None):
    """check_onnx_file, then `work(path, *arguments)` in the same child process; its result.

    `work` ("package.module:function") runs onnxruntime on the file (a crash in it is blamed on
    onnxruntime and refused like one at load). For a command that only runs the file
    (`verify FILE.onnx --data`) this saves the second interpreter, with its onnx and onnxruntime
    imports, that checking in a child and running in this process would cost. An InspectorError
    in the child is raised here with its message (--debug shows the child's traceback); any other
    exception becomes a RuntimeError, an internal error. The result and the arguments travel
    pickled between this process and its own child.
    """
    path = existing_file(path, "ONNX file")
    if _VOUCHED and file_digest(path) in _VOUCHED:
        module, name = work.split(":")
        return getattr(importlib.import_module(module), name)(str(path), *arguments)
    # The child names options as this process would: flags for the command line, else parameters.
    payload = base64.b64encode(pickle.dumps((work, arguments, naming_flags()))).decode()
    problem, said, lines = _check_in_child(path, "work", payload)
    if problem:
        raise InspectorError(problem)
    if warnings is not None:
        warnings += said
    for line in lines:
        if line.startswith("raised "):
            message, detail, user_error = pickle.loads(base64.b64decode(line[len("raised ") :]))
            kind = InspectorError if user_error else RuntimeError
            raise kind(message) from ChildTraceback(detail)
        if line.startswith("result "):
            return pickle.loads(base64.b64decode(line[len("result ") :]))
    raise RuntimeError(f"the child process that ran {path} returned no result")


class ChildTraceback(Exception):
    """The traceback of an exception raised in the child process, for --debug."""


def check_onnx_file_once(path) -> Path:
    """check_onnx_file (the checker and onnxruntime's first load), then vouch for those bytes, so
    that the next check of the unchanged file in this process (render after view's preparation,
    a drawing after a diff) costs no second child."""
    path = existing_file(path, "ONNX file")  # before reading it: a FIFO would block the digest
    digest = file_digest(path)  # before the check: a file changed meanwhile is checked again
    check_onnx_file(path)
    vouch_for(path, digest)
    return path


def vouch_for(path, digest: str | None = None) -> None:
    """Record a file this process wrote and checked itself (its `file_digest`, if known), so that
    checking it again, unchanged, skips the child. Only for inspector's own exports."""
    _VOUCHED.add(digest or file_digest(Path(path)))


def file_digest(path: Path) -> str:
    """sha256 of an .onnx file and of its .onnx.data file when it has one (where export puts it)."""
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + ".data")):
        if part.exists():
            with part.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def load_onnx(path):
    """The model proto without its external weights, for a summary, which only reads it.

    Nothing in the file runs and no weight is read, so neither the checker nor onnxruntime is
    needed (the child process that runs them costs more than the summary itself): protobuf's
    parser reads the bytes, and a file that is no model, or whose weights point outside its
    folder, is refused as the checker would refuse it.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = existing_file(path, "ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError) as error:
        raise InspectorError(f"{path} is not an ONNX model (its bytes do not decode)") from error
    if model.ir_version < 1 or not model.HasField("graph"):
        raise InspectorError(
            f"{path} is not a valid ONNX model: ir_version {model.ir_version} and "
            f"{'a' if model.HasField('graph') else 'no'} graph (an empty or foreign file)"
        )
    external_data_locations(model, path)
    return model


def load_checked_onnx(path, external_data: bool = True):
    """The model proto, with its weights by default, of a file that passed the checker."""
    import onnx

    path = check_onnx_file(path, runtime=False)  # only read here, never run
    return onnx.load(str(path), load_external_data=external_data)


def external_data_locations(model, path: Path) -> list[str]:
    """The relative locations of a model's external weights, refused when one leaves the model's
    folder (../, an absolute path, a symbolic or hard link: the ways to read a file the user
    never named)."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    folder = Path(path).resolve().parent
    locations = sorted(
        {ExternalDataInfo(t).location for t in _all_tensors(model.graph) if uses_external_data(t)}
    )
    for location in locations:
        target = folder / location
        problem = _location_problem(location, target, folder)
        if problem:
            raise InspectorError(
                f"{path} is not a valid ONNX model: its external data {location!r} {problem}"
            )
    return locations


def _location_problem(location: str, target: Path, folder: Path) -> str | None:
    if Path(location).is_absolute():
        return "is an absolute path"
    if target.is_symlink():
        return "is a symbolic link"
    if ".." in Path(location).parts or not target.resolve().is_relative_to(folder):
        return "points outside its folder"
    if target.is_file() and target.stat().st_nlink > 1:
        return "has multiple hard links"
    return None


def _all_tensors(graph):
    """Every TensorProto of a graph: initializers, tensor attributes, and those of subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_tensors(subgraph)


def _check_in_child(path: Path, mode: str, payload: str = "") -> tuple[str | None, list[str], list]:
    """Run the checks in a fresh interpreter (mode "checker", "runtime", or "work" with its
    `payload` on stdin); return the problem in one line (None if sound), the warnings it gave,
    and its lines of output."""
    package_root = str(Path(__file__).resolve().parents[2])
    # The child names options as this process would (onnxruntime's refusals suggest some).
    flags = ["flags"] if naming_flags() else []
    command = [sys.executable, "-c", _CHILD_CODE, package_root, str(path), mode, *flags]
    done = _run_child(command, payload)
    lines = done.stdout.splitlines()
    problem, warnings = _verdict(path, done, lines)
    return problem, warnings, lines


def _verdict(path: Path, done, lines: list[str]) -> tuple[str | None, list[str]]:
    stages = [line.split(" ", 1)[1] for line in lines if line.startswith("stage ")]
    stage = _STAGE_NAMES.get(stages[-1] if stages else "checker", "the onnx checker")
    # Stopped by Ctrl-C, SIGTERM or SIGHUP sent to the whole group: we were interrupted too.
    if done.returncode == ExitStatus.INTERRUPTED or -done.returncode in _INTERRUPTS:
        raise KeyboardInterrupt
    warnings = [line[len("warning ") :] for line in lines if line.startswith("warning ")]
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return (
            f"ONNX file {path} crashed {stage} ({name}); refusing a damaged or hostile file",
            warnings,
        )
    if "ok" in lines:
        return None, warnings
    verdicts = [line[len("error ") :] for line in lines if line.startswith("error ")]
    if verdicts:
        return verdicts[-1], warnings
    detail = first_line(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
    return f"ONNX file {path} cannot be checked: {stage} exited with status {done.returncode}" + (
        f": {detail}" if done.stderr.strip() else ""
    ), warnings


def _run_child(command: list[str], payload: str = "") -> subprocess.CompletedProcess:
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdin=pipe, stdout=pipe, stderr=pipe, text=True) as child:
        try:
            out, err = child.communicate(payload)
        except BaseException:
            # Ctrl-C: subprocess.run would give the child 0.25 s and leave it unreaped (a zombie
            # for whoever inherits it); stop it and reap it ourselves.
            child.kill()
            child.wait()
            raise
    return subprocess.CompletedProcess(command, child.returncode, out, err)


def _child_main(path: str, mode: str, flags: bool = False) -> None:
    """In the child: name each stage before it starts, so a crash can be blamed, then the verdict
    (and in mode "work", the work's result or exception, pickled on one line)."""
    with on_command_line() if flags else contextlib.nullcontext():
        _child_stages(path, mode)


def _child_stages(path: str, mode: str) -> None:
    try:
        _say("stage checker")
        problem = _checker_problem(path)
        if problem is None and mode == "runtime":
            _say("stage onnxruntime")
            problem = _runtime_problem(path)
        if problem is None and mode == "work":
            _say("stage onnxruntime")
            _say(_work_line(path, sys.stdin.read()))
        _say(f"error {problem}" if problem else "ok")
    except KeyboardInterrupt:
        sys.exit(ExitStatus.INTERRUPTED)


def _work_line(path: str, payload: str) -> str:
    import traceback

    work, arguments, flags = pickle.loads(base64.b64decode(payload))
    module, name = work.split(":")
    try:
        with on_command_line() if flags else contextlib.nullcontext():
            result = getattr(importlib.import_module(module), name)(path, *arguments)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        detail = "".join(traceback.format_exception(error))
        message = (
            str(error) if isinstance(error, InspectorError) else f"{type(error).__name__}: {error}"
        )
        raised = (message, detail, isinstance(error, InspectorError))
        return "raised " + base64.b64encode(pickle.dumps(raised)).decode()
    return "result " + base64.b64encode(pickle.dumps(result)).decode()


def _say(line: str) -> None:
    print(" ".join(line.split()), flush=True)


def _checker_problem(path: str) -> str | None:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        onnx.checker.check_model(path, full_check=True)
    except onnx.shape_inference.InferenceError as error:
        # Strict shape inference disagrees; the structural and safety checks alone decide.
        try:
            onnx.checker.check_model(path)
        except onnx.checker.ValidationError as invalid:
            return f"{path} is not a valid ONNX model: {first_line(invalid)}"
        _say(
            f"warning the onnx checker's shape inference disagrees with {Path(path).name} "
            f"(onnxruntime runs it anyway): {first_line(error)}"
        )
    except onnx.checker.ValidationError as error:
        return f"{path} is not a valid ONNX model: {first_line(error)}"
    except DecodeError:
        return f"{path} is not an ONNX model (its bytes do not decode)"
    except Exception as error:
        return f"{path} cannot be checked: {first_line(error)}"
    return None


def _runtime_problem(path: str) -> str | None:
    # The same session (options, provider) and the same refusal as the parent's later load.
    from .runtime import open_session

    try:
        open_session(path, Path(path).name)
    except InspectorError as error:
        return str(error)
    return None
