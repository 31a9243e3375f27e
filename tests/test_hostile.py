"""Hostile inputs: every command against files that are missing, damaged, crafted or dangerous.

Every case must end the same way: exit 2, exactly one line on stderr starting `inspector: error:`,
no traceback, no warning, and the folder it ran in unchanged (no stray files, the existing
destination file byte-identical). The cases run in-process (fd-level capture, so native libraries'
own writes to stderr count too); a few run as real `python -m inspector` processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _hostile_files as bad
import pytest
from conftest import split_steps

from inspector.cli import main

MODEL = "conv_bn_relu"  # Conv2d -> BatchNorm2d -> ReLU: small, with buffers and parameters
SMALL = ["--input-shape", "1,3,8,8"]
HUGE_SHAPE = "1,3,100000,100000"  # 112 GiB of float32
STARTUP_LIMIT = 120  # seconds for a real process: torch's import on a loaded 2-core machine


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    warnings: list

    @property
    def error_line(self) -> str:
        return self.err.strip()


@dataclass
class Arena:
    """A tmp folder laid out for one attack: inputs, a cwd, TMPDIR, and an existing destination."""

    root: Path
    inputs: Path
    out: Path
    existing: Path  # a file already at the destination: must stay byte-identical
    tmpdir: Path

    def snapshot(self):
        return bad.snapshot(self.root)

    @property
    def report(self) -> Path:
        return self.out / "report.json"  # exists: must stay byte-identical


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory) -> Path:
    """One export cache for the whole suite: a cache entry is not a stray file, and sharing it
    spares re-exporting the same small model for every case that gets that far."""
    return tmp_path_factory.mktemp("export-cache")


@pytest.fixture
def arena(tmp_path, monkeypatch, export_cache) -> Arena:
    inputs, out, work, tmpdir = (tmp_path / name for name in ("inputs", "out", "work", "tmp"))
    for folder in (inputs, out, work, tmpdir):
        folder.mkdir()
    existing = out / "existing.onnx"
    existing.write_bytes(b"an earlier result that must survive\n")
    (out / "report.json").write_text('{"an earlier": "report"}\n')
    (out / "golden").mkdir()  # for verify FILE.onnx --data
    monkeypatch.chdir(work)  # anything written to the cwd shows up in the snapshot
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(export_cache))
    _never_serve_forever(monkeypatch)
    return Arena(tmp_path, inputs, out, existing, tmpdir)


def _never_serve_forever(monkeypatch) -> None:
    """`view` serves until Ctrl-C: should a case ever get that far, stop it at once (it then
    exits 0, which fails the case) instead of hanging the suite."""
    from inspector.netron import serve

    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(serve, "wait_for_ctrl_c", interrupt)


@pytest.fixture
def read_only_folder(arena):
    """A folder even root cannot write into: chattr +i (root ignores mode bits, not this flag)."""
    folder = arena.out / "read-only"
    folder.mkdir()
    (folder / "kept.txt").write_text("kept\n")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def _python_default_warning_filters() -> None:
    """What a plain `python -m inspector` shows: everything but deprecation/import/resource noise."""
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")


@pytest.fixture
def run(capfd):
    """run(*argv) -> Outcome, in-process, capturing file descriptors 1 and 2 and any warning."""

    def go(*argv) -> Outcome:
        capfd.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            _python_default_warning_filters()
            code = main([str(a) for a in argv])
        out, err = capfd.readouterr()
        return Outcome(code, out, split_steps(err)[0], [str(w.message) for w in caught])

    return go


def assert_refused(result: Outcome, *words: str) -> None:
    lines = result.err.splitlines()
    assert result.code == 2, (result.code, result.err)
    assert len(lines) == 1, result.err
    assert lines[0].startswith("inspector: error: "), result.err
    assert "Traceback" not in result.out + result.err
    assert not result.warnings, result.warnings
    for word in words:
        assert word in lines[0], (word, lines[0])


# The cases: each builds its bad input in a folder and says what the error must mention ---------


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    words: tuple[str, ...]

    def __str__(self):
        return self.name


def _fifo(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        os.mkfifo(path)
        return path

    return make


def _external(kind: str) -> Callable[[Path], Path]:
    return lambda folder: bad.onnx_external_outside(folder, kind)[0]


ONNX_CASES = [
    Case("missing", lambda d: bad.missing(d, "model.onnx"), ("no such file",)),
    Case("folder", lambda d: bad.a_folder(d, "model.onnx"), ("is a folder",)),
    Case("fifo", _fifo("model.onnx"), ("not a regular file",)),
    Case("empty", lambda d: bad.empty(d, "model.onnx"), ("is empty",)),
    Case("truncated", lambda d: bad.truncated(bad.valid_onnx(d)), ("ONNX model",)),
    Case("random-bytes", lambda d: bad.random_bytes(d, "model.onnx"), ("ONNX model",)),
    Case("lfs-pointer", lambda d: bad.lfs_pointer(d, "model.onnx"), ("Git LFS pointer",)),
    Case("ir-version-0", bad.onnx_ir_version_0, ("ir_version",)),
    Case("external-parent", _external("parent"), ("points outside",)),
    Case("external-absolute", _external("absolute"), ("absolute path",)),
    Case("external-symlink", _external("symlink"), ("symbolic link",)),
    Case("external-hardlink", _external("hardlink"), ("hard links",)),
    Case("name-too-long", lambda d: d / f"{'m' * 256}.onnx", ("longer than 255 bytes",)),
]


def _mismatched(folder: Path) -> Path:
    """The right keys, but conv has 32 filters where the model has 64."""
    import torch

    state = _lecture_model().state_dict()
    state["conv.weight"] = torch.randn(32, 3, 3, 3)
    path = folder / "other.pt"
    torch.save(state, path)
    return path


def _missing_keys(folder: Path) -> Path:
    import torch

    state = {k: v for k, v in _lecture_model().state_dict().items() if not k.startswith("bn.")}
    path = folder / "partial.pt"
    torch.save(state, path)
    return path


def _torch_file(name: str, make):
    return lambda folder: make(folder, name)


CHECKPOINT_CASES = [
    Case("missing", lambda d: bad.missing(d, "weights.pt"), ("no such file",)),
    Case("folder", lambda d: bad.a_folder(d, "weights.pt"), ("is a folder",)),
    Case("fifo", _fifo("weights.pt"), ("not a regular file",)),
    Case("empty", lambda d: bad.empty(d, "weights.pt"), ("is empty",)),
    Case(
        "truncated",
        lambda d: bad.truncated(bad.valid_checkpoint(d, _lecture_model())),
        ("not a PyTorch checkpoint",),
    ),
    Case(
        "random-bytes", lambda d: bad.random_bytes(d, "weights.pt"), ("not a PyTorch checkpoint",)
    ),
    Case("lfs-pointer", lambda d: bad.lfs_pointer(d, "weights.pt"), ("Git LFS pointer",)),
    # One pickle opcode (APPENDS on an empty stack): the unpickler fails with an IndexError.
    Case("pickle-garbage", lambda d: _written(d / "weights.pt", b"e"), ("IndexError",)),
    Case("torchscript", bad.torchscript_archive, ("TorchScript archive",)),
    Case("pickled-module", bad.pickled_module, ("whole pickled model",)),
    Case("size-mismatch", _mismatched, ("does not fit", "conv.weight (32, 3, 3, 3)")),
    Case("missing-keys", _missing_keys, ("does not fit", "missing", "bn.weight")),
    Case("safetensors-empty", lambda d: bad.empty(d, "w.safetensors"), ("is empty",)),
    Case(
        "safetensors-random",
        lambda d: bad.random_bytes(d, "w.safetensors"),
        ("not a readable safetensors",),
    ),
    Case(
        "safetensors-truncated",
        lambda d: bad.truncated(bad.safetensors_checkpoint(d, _lecture_model())),
        ("not a readable safetensors",),
    ),
    Case("safetensors-lfs", lambda d: bad.lfs_pointer(d, "w.safetensors"), ("Git LFS pointer",)),
    Case("name-too-long", lambda d: d / f"{'w' * 256}.pt", ("longer than 255 bytes",)),
]


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _lecture_model():
    from inspector import models

    return models.create_model(MODEL)


# The commands: how each one is given an ONNX file or a checkpoint, with outputs aimed at `out` ---


def _onnx_argv(command: str, path: Path, arena: Arena) -> list:
    return {
        "summary": ["summary", path],
        "verify --data": ["verify", path, "--data", _golden_folder(arena)],
        "verify --onnx": ["verify", MODEL, *SMALL, "--onnx", path, "--report", arena.report],
        "view": ["view", path, "--no-browser"],
        "render": ["render", path, "-o", arena.out / "graph.png"],
    }[command]


def _golden_folder(arena: Arena) -> Path:
    return arena.out / "golden"  # made by the arena, before the snapshot


ONNX_COMMANDS = ["summary", "verify --data", "verify --onnx", "view", "render"]


def _model_argv(command: str, model_options: list, arena: Arena, model: str = MODEL) -> list:
    """The command on MODEL; a command that writes aims at an existing destination file."""
    bench_options = ["--batch-sizes", "1", "--runs", "1", "--warmup", "1"]
    return {
        "summary": ["summary", model, *model_options],
        "export": ["export", model, *model_options, "-o", arena.existing],
        "verify": ["verify", model, *model_options, "--report", arena.report],
        "view": ["view", model, *model_options, "--no-browser"],
        "render": ["render", model, *model_options, "-o", arena.out / "graph.png"],
        "bench": ["bench", model, *model_options, *bench_options],
    }[command]


MODEL_COMMANDS = ["summary", "export", "verify", "view", "render", "bench"]


# Where a command writes: -o and friends, aimed at places it cannot or must not write -------------


def _output_argv(command: str, destination: Path) -> list:
    return {
        "export -o": ["export", MODEL, *SMALL, "-o", destination],
        "render -o": ["render", MODEL, *SMALL, "-o", destination],
        "verify --report": ["verify", MODEL, *SMALL, "--report", destination],
        "verify --save-data": ["verify", MODEL, *SMALL, "--save-data", destination],
    }[command]


OUTPUT_SUFFIX = {
    "export -o": ".onnx",
    "render -o": ".png",
    "verify --report": ".json",
    "verify --save-data": "",
}


def _full_folder(out: Path, suffix: str) -> Path:
    folder = bad.a_folder(out, f"result{suffix}")
    (folder / "keep.txt").write_text("keep\n")
    return folder


OUTPUT_CASES = [
    Case(
        "missing-folder",
        lambda out, sfx: out / "no-such-folder" / f"result{sfx}",
        ("does not exist",),
    ),
    Case(
        "file-as-parent",
        lambda out, sfx: out / "existing.onnx" / f"result{sfx}",
        ("existing.onnx",),
    ),
    Case("is-a-folder", _full_folder, ("result",)),
    Case(
        "name-too-long",
        lambda out, sfx: out / f"{'r' * 256}{sfx}",
        ("longer than 255 bytes",),
    ),
]
# What each command says about a folder where its file should go (--save-data wants a folder).
FOLDER_WORDS = {"verify --save-data": "already exists"}


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=str)
@pytest.mark.parametrize("command", list(OUTPUT_SUFFIX))
def test_unwritable_output_path_is_refused(arena, run, command, case):
    destination = case.make(arena.out, OUTPUT_SUFFIX[command])
    words = case.words
    if case.name == "is-a-folder":
        words += (FOLDER_WORDS.get(command, "is a folder"),)
    before = arena.snapshot()
    result = run(*_output_argv(command, destination))
    assert_refused(result, *words)
    assert arena.snapshot() == before


@pytest.mark.parametrize("command", list(OUTPUT_SUFFIX))
def test_read_only_output_folder_is_refused(arena, run, read_only_folder, command):
    destination = read_only_folder / f"result{OUTPUT_SUFFIX[command]}"
    with pytest.raises(PermissionError):  # the folder really is read-only, even for root
        (read_only_folder / "probe").write_text("x")
    before = arena.snapshot()
    result = run(*_output_argv(command, destination))
    assert_refused(result, str(read_only_folder), "cannot write")
    assert arena.snapshot() == before


# conv-shape takes numbers, not files: the hostile ones -------------------------------------------

CONV_SHAPE_CASES = [
    (["--input", "0", "--kernel", "3"], "positive"),
    (["--input", "-5", "--kernel", "3"], "positive"),
    (["--input", "3", "--kernel", "999"], "larger than"),
    (["--input", "1e999", "--kernel", "3"], "not an integer"),
    (["--input", ",,", "--kernel", "3"], "not an integer"),
    (["--input", "8,8,8", "--kernel", "3"], "H,W pair"),
    (["--input", "8", "--kernel", "3", "--stride", "0"], "stride"),
    (["--input", "8", "--kernel", "3", "--dilation", "0"], "dilation"),
    (["--input", "8", "--kernel", "3", "--padding", "-1"], "padding"),
    (["--input", "8", "--kernel", "3", "--output", "0"], "output"),
    (["--input", "8", "--kernel", "3", "--output", "100"], "no stride and padding"),
]


@pytest.mark.parametrize(
    "argv, word", CONV_SHAPE_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_conv_shape_refuses_impossible_numbers(arena, run, argv, word):
    before = arena.snapshot()
    assert_refused(run("conv-shape", *argv), word)
    assert arena.snapshot() == before


# check-all takes no files: its hostile inputs are shards and patterns ----------------------------

CHECK_ALL_CASES = [
    (["--shard", "0/2"], "between 1 and N"),
    (["--shard", "3/2"], "between 1 and N"),
    (["--shard", "1/0"], "between 1 and N"),
    (["--shard", "one/two"], "I/N"),
    (["--shard", "1/2/3"], "I/N"),
    (["--pattern", "no_such_model*"], "matches no registered model"),
]


@pytest.mark.parametrize(
    "argv, word", CHECK_ALL_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_check_all_refuses_impossible_shards_and_patterns(arena, run, argv, word):
    before = arena.snapshot()
    assert_refused(run("check-all", *argv), word)
    assert arena.snapshot() == before


@pytest.mark.parametrize("case", ONNX_CASES, ids=str)
@pytest.mark.parametrize("command", ONNX_COMMANDS)
def test_bad_onnx_file_is_refused(arena, run, command, case):
    path = case.make(arena.inputs)
    before = arena.snapshot()
    result = run(*_onnx_argv(command, path, arena))
    assert_refused(result, path.name, *case.words)
    assert arena.snapshot() == before


@pytest.mark.parametrize("case", CHECKPOINT_CASES, ids=str)
@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_bad_checkpoint_is_refused(arena, run, command, case):
    path = case.make(arena.inputs)
    before = arena.snapshot()
    result = run(*_model_argv(command, [*SMALL, "--checkpoint", path], arena))
    assert_refused(result, path.name, *case.words)
    assert arena.snapshot() == before


def _source(name: str, text: str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        (folder / name).write_text(text)
        return f"{folder / name}:Net"

    return make


SPEC_CASES = [
    Case("missing-file", lambda d: f"{d / 'missing.py'}:Net", ("no such file",)),
    Case("folder", lambda d: f"{bad.a_folder(d, 'models.py')}:Net", ("models.py",)),
    Case("empty-file", _source("empty.py", ""), ("has no attribute 'Net'",)),
    Case("syntax-error", _source("syntax.py", "def broken(:\n"), ("SyntaxError",)),
    Case("raises", _source("raises.py", "raise RuntimeError('boom')\n"), ("RuntimeError: boom",)),
    Case("exits", _source("exits.py", "import sys\nsys.exit(3)\n"), ("sys.exit(3)",)),
    Case("not-a-module", _source("value.py", "Net = 42\n"), ("not an nn.Module",)),
    Case(
        "returns-junk", _source("func.py", "def Net():\n    return 'junk'\n"), ("not an nn.Module",)
    ),
    Case("null-bytes", lambda d: f"{bad.random_bytes(d, 'noise.py')}:Net", ("noise.py failed",)),
    Case("unknown-module", lambda d: "no_such_package.models:Net", ("cannot import",)),
]


@pytest.mark.parametrize("case", SPEC_CASES, ids=str)
@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_bad_model_spec_is_refused(arena, run, command, case):
    spec = case.make(arena.inputs)
    before = arena.snapshot()
    result = run(*_model_argv(command, ["--input-shape", "1,3"], arena, model=spec))
    assert_refused(result, *case.words)
    assert arena.snapshot() == before


def test_a_script_that_parses_arguments_at_import_is_refused(arena, run):
    """Its own argparse prints its usage, as `python script.py` would; then our one line."""
    spec = _source(
        "train.py",
        "import argparse\np = argparse.ArgumentParser()\n"
        "p.add_argument('--lr', required=True)\nargs = p.parse_args()\n",
    )(arena.inputs)
    result = run("summary", spec, "--input-shape", "1,3")
    assert result.code == 2
    assert result.err.splitlines()[-1].startswith("inspector: error: running ")
    assert "sys.exit(2)" in result.err.splitlines()[-1]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_checkpoint_that_would_run_code_is_never_unpickled(arena, run, command, legacy):
    marker = arena.root / "PWNED"
    path = bad.checkpoint_running_code(arena.inputs, marker, legacy=legacy)
    before = arena.snapshot()
    result = run(*_model_argv(command, [*SMALL, "--checkpoint", path], arena))
    assert_refused(result, path.name, "io.open", "weights_only=True refuses")
    assert not marker.exists()
    assert arena.snapshot() == before


def test_the_code_running_checkpoint_really_runs_code_when_unpickled(tmp_path):
    """Guards the case above: the crafted file is live, so its refusal means something."""
    import torch

    marker = tmp_path / "PWNED"
    path = bad.checkpoint_running_code(tmp_path, marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_input_shape_too_large_for_memory_is_refused_before_allocating(
    arena, run, command, monkeypatch
):
    import torch

    allocations = []
    real_randn = torch.randn
    monkeypatch.setattr(
        torch, "randn", lambda *a, **k: allocations.append(a) or real_randn(*a, **k)
    )
    before = arena.snapshot()
    result = run(*_model_argv(command, ["--input-shape", HUGE_SHAPE], arena))
    assert_refused(result, "1x3x100000x100000", "needs ~111.8 GiB", "GiB available")
    assert allocations == []
    assert arena.snapshot() == before


@pytest.mark.parametrize("command", ["verify", "bench"])
def test_batch_size_too_large_for_memory_is_refused_before_allocating(arena, run, command):
    before = arena.snapshot()
    result = run(command, "relu", "--batch-sizes", "1,99999999999")  # 9 floats per sample
    assert_refused(
        result,
        "99999999999",
        "~3352.8 GiB",  # bench and verify share one estimate
        "--batch-sizes",
    )
    assert arena.snapshot() == before


def test_memory_estimate_uses_what_the_system_reports(monkeypatch):
    from inspector import loading
    from inspector.errors import InspectorError
    from inspector.usermodel.inputs import InputSpec

    monkeypatch.setattr(loading, "available_memory", lambda: 4 * 2**30)
    loading.check_inputs_fit_in_memory([InputSpec((1, 3, 224, 224))], "m")  # 0.6 MB: fine
    big = InputSpec((2, 3, 2**13, 2**14))
    with pytest.raises(InspectorError, match=r"needs ~3\.0 GiB, 4\.0 GiB available"):
        loading.check_inputs_fit_in_memory([big], "m")  # 3 GiB > half of 4
    # The dtype counts: the same shape in int8 is a quarter of it, and fits.
    loading.check_inputs_fit_in_memory([InputSpec(big.shape, "int8")], "m")
    monkeypatch.setattr(loading, "available_memory", lambda: None)
    loading.check_inputs_fit_in_memory([big], "m")  # unknown: do not guess


def test_available_memory_matches_proc_meminfo():
    from inspector.loading import available_memory

    text = Path("/proc/meminfo").read_text()
    kib = int(
        next(line for line in text.splitlines() if line.startswith("MemAvailable")).split()[1]
    )
    assert abs(available_memory() - kib * 1024) < 512 * 2**20  # it moves while we read it


def test_cuda_checkpoint_loads_only_thanks_to_map_location(arena, run):
    import torch

    module = _lecture_model()
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=torch.Generator().manual_seed(3)))
    path = bad.cuda_checkpoint(arena.inputs, module)
    # What a loader without map_location gets: an error on a machine without CUDA, CUDA tensors
    # (which a CPU model would meet with a device mismatch) on one with it.
    if torch.cuda.is_available():
        tensors = torch.load(path, weights_only=True).values()
        assert all(tensor.is_cuda for tensor in tensors)
    else:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    from inspector.loading import load_model

    loaded = load_model(MODEL, checkpoint=path)
    for key, value in module.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[key], value), key
    result = run("summary", MODEL, *SMALL, "--checkpoint", path)
    assert result.code == 0, result.err
    destination = arena.out / "from-cuda.onnx"
    result = run("export", MODEL, *SMALL, "--checkpoint", path, "-o", destination)
    assert result.code == 0, result.err
    assert destination.is_file()


# Native crashes: a child process takes the blow ------------------------------------------------

_CRASHER = """\
import os, resource, signal
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file left behind
import onnx.checker, onnxruntime

def crash(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGSEGV)

if os.environ.get("CRASH_IN") == "checker":
    onnx.checker.check_model = crash
else:
    onnxruntime.InferenceSession = crash
"""


@pytest.fixture
def crashing_onnx_libraries(tmp_path_factory, monkeypatch):
    """Children started from now on crash by SIGSEGV inside onnx's checker or onnxruntime."""
    folder = tmp_path_factory.mktemp("crasher")  # outside the arena: its __pycache__ is no stray
    (folder / "sitecustomize.py").write_text(_CRASHER)
    monkeypatch.setenv("PYTHONPATH", str(folder))

    def crash_in(stage: str):
        monkeypatch.setenv("CRASH_IN", stage)

    return crash_in


@pytest.mark.parametrize(
    "stage, blamed", [("checker", "the onnx checker"), ("onnxruntime", "onnxruntime")]
)
def test_native_crash_while_checking_becomes_one_line_naming_the_file(
    tmp_path, crashing_onnx_libraries, stage, blamed
):
    from inspector.errors import InspectorError
    from inspector.onnx.files import check_onnx_file

    crashing_onnx_libraries(stage)
    path = bad.valid_onnx(tmp_path)
    with pytest.raises(InspectorError) as refused:
        check_onnx_file(path)
    assert str(refused.value) == (
        f"ONNX file {path} crashed {blamed} (SIGSEGV); refusing a damaged or hostile file"
    )


# summary only parses the file (no checker, no onnxruntime), so it has no native stage to crash.
CRASH_CASES = [
    (command, stage)
    for command in ONNX_COMMANDS
    if command != "summary"
    for stage in ("checker", "onnxruntime")
]


@pytest.mark.parametrize("command, stage", CRASH_CASES)
def test_native_crash_fails_the_command_cleanly(
    arena, run, command, stage, crashing_onnx_libraries
):
    crashing_onnx_libraries(stage)
    path = bad.valid_onnx(arena.inputs)
    before = arena.snapshot()
    result = run(*_onnx_argv(command, path, arena))
    blamed = "the onnx checker" if stage == "checker" else "onnxruntime"
    assert_refused(result, str(path), f"crashed {blamed} (SIGSEGV)")
    assert arena.snapshot() == before


def test_sound_file_passes_the_checks(tmp_path):
    from inspector.onnx.files import check_onnx_file

    path = bad.valid_onnx(tmp_path)
    assert check_onnx_file(path) == path
    assert check_onnx_file(path, runtime=False) == path


def test_an_export_is_not_checked_again_until_its_bytes_change(tmp_path, monkeypatch):
    """verify right after an export skips the child; an edited copy, or a user's file, does not."""
    import shutil

    from inspector.export import exported_model
    from inspector.loading import load_model
    from inspector.onnx import files as onnx_file

    children = []
    real = onnx_file._check_in_child
    monkeypatch.setattr(onnx_file, "_check_in_child", lambda *a: children.append(a[0]) or real(*a))
    loaded = load_model("linear", input_shapes=[(2, 1280)])
    with exported_model(loaded, use_cache=False) as exported:
        assert onnx_file.check_onnx_file(exported) == exported and children == []
        path = Path(shutil.copy(exported, tmp_path / "l.onnx"))

    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # same size, one byte changed
    path.write_bytes(bytes(data))
    onnx_file.check_onnx_file(path)
    assert children == [path]

    given = bad.valid_onnx(tmp_path)
    onnx_file.check_onnx_file(given)
    assert children == [path, given]


def test_onnxruntime_refusal_is_reported_with_the_file(tmp_path):
    """The checker skips custom domains; onnxruntime has no kernel for the op and says so."""
    import onnx
    from onnx import TensorProto, helper

    from inspector.errors import InspectorError
    from inspector.onnx.files import check_onnx_file

    graph = helper.make_graph(
        [helper.make_node("Unknown", ["x"], ["y"], domain="com.example")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)],
        ir_version=8,  # every onnxruntime the ranges admit reads it
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    assert check_onnx_file(path, runtime=False) == path
    with pytest.raises(InspectorError, match="onnxruntime cannot run custom.onnx: .*Unknown"):
        check_onnx_file(path)


def test_checking_an_onnx_file_does_not_import_torch(tmp_path):
    path = bad.valid_onnx(tmp_path)
    code = (
        "import sys\n"
        "from inspector.onnx.files import check_onnx_file\n"
        f"check_onnx_file({str(path)!r})\n"
        "from inspector.cli import main\n"
        f"assert main(['summary', {str(path)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# The same refusals seen from outside: real processes, real stderr -----------------------------


@pytest.mark.parametrize(
    "argv_for",
    [
        lambda d: ["summary", bad.random_bytes(d, "model.onnx")],
        lambda d: ["summary", bad.onnx_external_outside(d, "hardlink")[0]],
        lambda d: ["summary", MODEL, *SMALL, "--checkpoint", bad.torchscript_archive(d)],
        lambda d: ["summary", MODEL, "--input-shape", HUGE_SHAPE],
    ],
    ids=["onnx-random-bytes", "onnx-hardlink", "torchscript", "huge-shape"],
)
def test_refusals_in_a_real_process(tmp_path, argv_for):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv = [str(a) for a in argv_for(inputs)]
    before = bad.snapshot(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "inspector", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=bad.cli_env(TMPDIR=inputs),
    )
    assert done.returncode == 2, done.stderr
    lines = split_steps(done.stderr)[0].splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: error: "), done.stderr
    assert bad.snapshot(tmp_path) == before


def test_the_hardlink_case_is_live_for_onnxruntime(tmp_path):
    """Guards the hard-link case: onnxruntime alone reads the outside file, so the checker must."""
    import numpy as np
    import onnxruntime

    path, _ = bad.onnx_external_outside(tmp_path, "hardlink")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    _, weight = bad.tiny_onnx_model()
    np.testing.assert_allclose(session.run(None, {"x": x})[0], np.maximum(x @ weight, 0), rtol=1e-6)


def test_onnxruntime_telemetry_is_off_and_leaves_no_session_file(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = bad.cli_env(TMPDIR=tmpdir)
    env.pop("ORT_DISABLE_TELEMETRY", None)
    env.pop("CI", None)  # onnxruntime keeps telemetry off by itself under CI=true
    code = "import inspector, onnxruntime, os; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert list(tmpdir.iterdir()) == []
    # Without inspector's default the same import leaves onnxruntime's session file behind.
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True)
    assert [p.name for p in tmpdir.iterdir()] == [".ses"]


@pytest.mark.parametrize(
    "argv, word",
    [(["list", "a\nb"], "unrecognized arguments: a b"), (["conv-shape", "--input\r"], "--input")],
)
def test_an_argument_holding_a_newline_is_still_a_one_line_usage_error(run, argv, word):
    assert_refused(run(*argv), word)


@pytest.mark.parametrize("target", ["FILE.onnx", "MODEL"])
def test_busy_port_is_refused(arena, run, target):
    model = bad.valid_onnx(arena.inputs) if target == "FILE.onnx" else MODEL
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = arena.snapshot()
        result = run(
            "view", model, *([] if target == "FILE.onnx" else SMALL), "--no-browser", "--port", port
        )
    assert_refused(result, f"port {port}", "already in use")
    assert arena.snapshot() == before  # the private copy Netron would have served is gone too


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_view_stays_on_loopback_unless_told(arena, run, host):
    path = bad.valid_onnx(arena.inputs)
    before = arena.snapshot()
    assert_refused(run("view", path, "--no-browser", "--host", host), host, "--allow-remote")
    assert arena.snapshot() == before


# Golden data from someone else's repository: verify FILE.onnx --data DIR -----------------------


def _golden_case(break_it: Callable[[Path], object]) -> Callable[[Path], Path]:
    """Sound golden data for tiny_onnx_model, then `break_it(test_data_set_0)`."""

    def make(folder: Path) -> Path:
        data = bad.golden_data(folder / "golden")
        break_it(data / "test_data_set_0")
        return data

    return make


def _renamed(old: str, new: str) -> Callable[[Path], object]:
    return lambda data_set: (data_set / old).rename(data_set / new)


def _copied(old: str, new: str) -> Callable[[Path], object]:
    return lambda data_set: (data_set / new).write_bytes((data_set / old).read_bytes())


def _replaced_by(make_thing: Callable[[Path], object]) -> Callable[[Path], object]:
    def replace(data_set: Path):
        (data_set / "input_0.pb").unlink()
        make_thing(data_set / "input_0.pb")

    return replace


def _external_input(location: str) -> Callable[[Path], object]:
    """input_0.pb says its values are in `location`, which holds exactly the values it needs (the
    current folder's x.bin, a sibling, an absolute path): a reader that follows it succeeds."""

    def make(data_set: Path):
        import onnx

        tensor = onnx.TensorProto()
        tensor.ParseFromString((data_set / "input_0.pb").read_bytes())
        values = onnx.numpy_helper.to_array(tensor)
        target = Path(location.replace("{data_set}", str(data_set)))
        target = target if target.is_absolute() else Path.cwd() / target
        target.write_bytes(values.tobytes())
        bad.external_tensor(data_set / "input_0.pb", location.replace("{data_set}/", ""), values)

    return make


def _device(path: Path) -> None:
    import stat

    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")


def _symlink_outside(path: Path) -> None:
    secret = path.parents[2] / "secret.pb"  # beside the data folder, not in it
    secret.write_bytes((path.parent / "output_0.pb").read_bytes())
    path.symlink_to(secret)


def _set_folder_as_file(data_set: Path) -> None:
    import shutil

    shutil.rmtree(data_set)
    data_set.write_bytes(b"not a folder")


def _sets_with_a_gap(folder: Path) -> Path:
    data = bad.golden_data(folder / "golden", sets=2)
    (data / "test_data_set_1").rename(data / "test_data_set_7")
    return data


GOLDEN_CASES = [
    Case(
        "huge-index",  # the old reader built range(10**20): memory until the OOM killer
        _golden_case(_copied("input_0.pb", "input_99999999999999999999.pb")),
        ("test_data_set_0", "input_1.pb is missing", "input_99999999999999999999.pb"),
    ),
    Case(
        "output-gap",
        _golden_case(_copied("output_0.pb", "output_2.pb")),
        ("output_1.pb is missing", "found output_0.pb, output_2.pb"),
    ),
    Case("set-gap", _sets_with_a_gap, ("test_data_set_1 is missing", "test_data_set_7")),
    Case(
        "leading-zero",
        _golden_case(_renamed("input_0.pb", "input_00.pb")),
        ("input_00.pb", "leading zero"),
    ),
    Case("external-cwd", _golden_case(_external_input("x.bin")), ("external file", "x.bin")),
    Case(
        "external-beside",
        _golden_case(_external_input("{data_set}/x.bin")),
        ("external file", "x.bin"),
    ),
    Case(
        "external-absolute",
        lambda folder: _golden_case(_external_input(str(folder / "abs.bin")))(folder),
        ("external file", "abs.bin"),
    ),
    Case(
        "input-is-folder",
        _golden_case(_replaced_by(lambda path: path.mkdir())),
        ("input_0.pb is a folder",),
    ),
    Case("input-is-fifo", _golden_case(_replaced_by(os.mkfifo)), ("input_0.pb is a FIFO",)),
    Case("input-is-device", _golden_case(_replaced_by(_device)), ("input_0.pb is a device",)),
    Case(
        "input-outside",
        _golden_case(_replaced_by(_symlink_outside)),
        ("input_0.pb points outside",),
    ),
    Case("set-is-a-file", _golden_case(_set_folder_as_file), ("test_data_set_0 is not a folder",)),
]


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=str)
def test_bad_golden_data_is_refused(arena, run, case):
    model = bad.valid_onnx(arena.inputs)
    data = case.make(arena.inputs)
    before = arena.snapshot()
    result = run("verify", model, "--data", data, "--report", arena.report)
    assert_refused(result, *case.words)
    assert arena.snapshot() == before


def test_the_golden_data_the_cases_break_is_sound(arena, run):
    """Guards the cases above: unbroken, the same data passes."""
    model = bad.valid_onnx(arena.inputs)
    result = run("verify", model, "--data", bad.golden_data(arena.inputs / "golden", sets=2))
    assert result.code == 0, result.err
    assert result.out.startswith(
        "PASSED | tiny.onnx: onnxruntime matches the test data in 2 run(s)"
    )


# Model code that ends the process, raises what is not an Exception, or returns nothing ----------


def _net(forward: str, init: str = "pass", header: str = "") -> str:
    return (
        f"import sys\nimport torch\n{header}\n\n"
        "class Net(torch.nn.Module):\n"
        f"    def __init__(self):\n        super().__init__()\n        {init}\n\n"
        f"    def forward(self, x):\n        {forward}\n"
    )


STOP = "class Stop(BaseException):\n    pass"

USER_CODE_CASES = [
    Case(
        "forward-exits-0",  # ended verify, export and summary with exit 0 and no output
        _source("exit0.py", _net("sys.exit(0)")),
        ("exit0.py:Net: its forward called sys.exit(0)",),
    ),
    Case(
        "forward-raises-systemexit",
        _source("systemexit.py", _net("raise SystemExit")),
        ("its forward called sys.exit(None)",),
    ),
    Case(
        "constructor-exits",
        _source("ctor.py", _net("return x", init="sys.exit(4)")),
        ("ctor.py:Net: its constructor called sys.exit(4)",),
    ),
    Case(
        "forward-raises-base-exception",  # a raw traceback
        _source("stop.py", _net("raise Stop('halt')", header=STOP)),
        ("stop.py:Net: its forward raised Stop: halt",),
    ),
    Case(
        "import-raises-base-exception",
        _source("stopimport.py", f"{STOP}\n\nraise Stop('at import')\n"),
        ("stopimport.py:Net: its import raised Stop: at import",),
    ),
    Case(
        "forward-raises-keyboard-interrupt",  # exited 130 "interrupted" with no Ctrl-C
        _source("ki.py", _net("raise KeyboardInterrupt")),
        ("its forward raised KeyboardInterrupt, but no Ctrl-C came",),
    ),
]


@pytest.mark.parametrize("case", USER_CODE_CASES, ids=str)
@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_code_that_ends_the_process_is_refused(arena, run, command, case):
    spec = case.make(arena.inputs)
    before = arena.snapshot()
    result = run(*_model_argv(command, ["--input-shape", "1,3"], arena, model=spec))
    assert_refused(result, *case.words)
    assert arena.snapshot() == before


@pytest.mark.parametrize("returns", ["None", "{'a': None}"])
@pytest.mark.parametrize("command", [c for c in MODEL_COMMANDS if c != "summary"])
def test_a_forward_that_returns_no_tensor_is_refused_at_export(arena, run, command, returns):
    """It exported "successfully" to a graph with no outputs, which verify then fed to
    onnxruntime (and its native log)."""
    spec = _source(
        "nothing.py",
        _net(
            f"self.linear(x)\n        return {returns}", init="self.linear = torch.nn.Linear(3, 2)"
        ),
    )(arena.inputs)
    before = arena.snapshot()
    result = run(*_model_argv(command, ["--input-shape", "2,3"], arena, model=spec))
    assert_refused(result, "nothing.py:Net")
    assert arena.snapshot() == before


def test_a_keyboard_interrupt_from_model_code_stays_one_outside_the_cli():
    """Without the CLI's signal handler (the Python API) a KeyboardInterrupt may be a real Ctrl-C:
    it is left alone."""
    from inspector.usermodel.usercode import user_code

    with pytest.raises(KeyboardInterrupt), user_code("net.py:Net", "its forward"):
        raise KeyboardInterrupt


_THREAD_LEFT_RUNNING = """\
import threading
import torch

# A module that starts a worker and never stops it: the interpreter would wait for it at exit.
threading.Thread(target=threading.Event().wait, name="user-worker").start()


class Net(torch.nn.Module):
    def forward(self, x):
        return x * 2
"""


@pytest.mark.parametrize(
    "attr, code, stream, expected",
    [("Net", 0, "stdout", "Total params: 0"), ("Missing", 2, "stderr", "no attribute 'Missing'")],
)
def test_a_thread_left_running_by_model_code_does_not_keep_the_command_alive(
    tmp_path, attr, code, stream, expected
):
    (tmp_path / "worker.py").write_text(_THREAD_LEFT_RUNNING)
    process = subprocess.Popen(
        [sys.executable, "-m", "inspector", "summary", f"worker.py:{attr}", "--input-shape", "1,3"],
        cwd=tmp_path,
        env=bad.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=STARTUP_LIMIT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"still running {STARTUP_LIMIT} s later, its output done: {out}{err}")
    assert process.returncode == code, err
    assert expected in {"stdout": out, "stderr": err}[stream]


# The Netron server: DNS rebinding, and requests netron's handler answered with tracebacks --------

# (method, path, Host header or None for ours, status). PORT is the served port.
HTTP_CASES = [
    ("GET", "/", None, 200),
    ("GET", "/data/{model}", None, 200),
    ("GET", "/data/{model}", "localhost:{port}", 200),
    ("GET", "/data/{model}", "[::1]:{port}", 200),
    ("HEAD", "/", None, 200),
    # A web page whose name the attacker re-resolved to 127.0.0.1 sends its own name.
    ("GET", "/data/{model}", "rebind.attacker.example:{port}", 403),
    ("GET", "/", "rebind.attacker.example", 403),
    ("GET", "/", "127.0.0.1:{other_port}", 403),
    ("GET", "/data/{model}", "", 403),
    ("GET", "/data/%00", None, 400),
    ("GET", "/data/{model}%00.txt", None, 400),
    ("POST", "/data/{model}", None, 405),
    ("PUT", "/data/{model}", None, 405),
    ("DELETE", "/", None, 405),
]


def _request(port: int, method: str, path: str, host: str | None) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=STARTUP_LIMIT)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host:
            connection.putheader("Host", host)
        body = b"payload" if method in ("POST", "PUT") else None
        if body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_view_answers_only_requests_addressed_to_it(arena, run, monkeypatch):
    """Real HTTP requests against the model `view` serves; nothing reaches its stderr."""
    from urllib.parse import urlsplit

    from inspector.netron import serve

    model = bad.valid_onnx(arena.inputs)
    answers = []

    def open_browser(url):
        answers.append(urlsplit(url).port)
        return True

    def requests_then_ctrl_c():
        port = answers.pop()
        for method, path, host, _ in HTTP_CASES:
            words = {"model": model.name, "port": port, "other_port": port + 1}
            host = f"127.0.0.1:{port}" if host is None else host.format(**words)
            answers.append(_request(port, method, path.format(**words), host))
        raise KeyboardInterrupt

    monkeypatch.setattr(serve.webbrowser, "open", open_browser)
    monkeypatch.setattr(serve, "wait_for_ctrl_c", requests_then_ctrl_c)
    result = run("view", model, "--port", _free_port())
    assert result.code == 0, result.err
    assert [status for status, _ in answers] == [status for *_, status in HTTP_CASES]
    assert answers[1][1] == model.read_bytes()  # the allowed request really got the model
    assert all(model.read_bytes() not in body for status, body in answers if status != 200)
    assert result.err == "" and "Traceback" not in result.out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "host, remote, allowed, refused",
    [
        ("127.0.0.1", False, ["127.0.0.1:8080", "LOCALHOST:8080", "[::1]:8080"], ["evil:8080"]),
        ("192.168.1.10", True, ["192.168.1.10:8080", "localhost:8080"], ["192.168.1.10:80"]),
        ("::", True, ["[::]:8080"], ["evil.example:8080", "[::]"]),
    ],
)
def test_the_host_header_must_name_the_server(host, remote, allowed, refused):
    from inspector.netron.guard import allowed_hosts

    hosts = allowed_hosts(host, 8080, remote)
    assert all(name.lower() in hosts for name in allowed), hosts
    assert not any(name.lower() in hosts for name in refused), hosts


# Environment and input errors are exit 2 with one line, not "internal error" -------------------

LONG_NAME = "n" * 256  # one byte over NAME_MAX


def _deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


ENVIRONMENT_CASES = [
    Case(
        "deep-kwargs",
        lambda arena: ["summary", MODEL, *SMALL, "--kwargs", f'{{"a": {_deep_json()}}}'],
        ("--kwargs is nested too deeply",),
    ),
    Case(
        "deep-kwarg",
        lambda arena: ["summary", MODEL, *SMALL, "-k", f"a={_deep_json()}"],
        ("-k a: the value is nested too deeply",),
    ),
    Case(
        "long-spec-file",  # not one of ours to check first: the file system's refusal, one line
        lambda arena: ["summary", f"{arena.inputs / LONG_NAME}.py:Net"],
        ("File name too long",),
    ),
    Case(
        "long-data-folder",
        lambda arena: ["verify", bad.valid_onnx(arena.inputs), "--data", arena.out / LONG_NAME],
        ("--data", "longer than 255 bytes"),
    ),
    Case(
        "view-port-out-of-range",  # was checked only after the export
        lambda arena: ["view", MODEL, *SMALL, "--no-browser", "--port", "70000"],
        ("--port", "'70000'", "1 to 65535"),
    ),
    Case(
        "torchscript-below-opset-9",  # said the batch was baked into the model
        lambda arena: [
            "export",
            MODEL,
            *SMALL,
            "--exporter",
            "torchscript",
            "--opset",
            "8",
            "-o",
            arena.existing,
        ],
        ("--opset 8", "below opset 9", "weights as inputs"),
    ),
]


@pytest.mark.parametrize("case", ENVIRONMENT_CASES, ids=str)
def test_environment_errors_are_one_line(arena, run, case, monkeypatch):
    from inspector.export import exporter

    exports = []
    real_export = exporter._run_exporter
    monkeypatch.setattr(exporter, "_run_exporter", lambda *a: exports.append(a) or real_export(*a))
    argv = case.make(arena)
    before = arena.snapshot()
    assert_refused(run(*argv), *case.words)
    assert arena.snapshot() == before
    assert exports == []  # refused before anything slow ran


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a tiny tmpfs filled to the last byte: files can be made, not written."""
    import errno
    import shutil

    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    folder = tmp_path / "full-disk"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        (folder / "report.json").write_text('{"an earlier": "report"}\n')
        descriptor = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(descriptor, b"\0" * 4096)
        except OSError as full:
            assert full.errno == errno.ENOSPC
        finally:
            os.close(descriptor)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


FULL_DISK_OUTPUTS = {
    "verify --report": lambda full: ["--report", full / "report.json"],
    "verify --save-data": lambda full: ["--save-data", full / "golden"],
}


@pytest.mark.parametrize("option", list(FULL_DISK_OUTPUTS))
def test_a_full_disk_is_refused_before_passed_is_printed(arena, run, full_disk, option):
    before = arena.snapshot()
    result = run("verify", MODEL, *SMALL, *FULL_DISK_OUTPUTS[option](full_disk))
    assert_refused(result, option.split()[-1], "No space left on device")
    assert result.out == ""  # no PASSED before the failure
    assert arena.snapshot() == before  # the earlier report intact, no partial files


@pytest.mark.parametrize(
    "how, words",
    [
        # The disk filled after Python chose it as $TMPDIR (or the model is what does not fit).
        ("nearly-full", ("cannot copy the model", "No space left on device")),
        # Every candidate is full: Python's tempfile finds none to use.
        ("all-full", ("private folder for Netron", "No usable temporary directory")),
    ],
)
def test_view_with_a_full_tmpdir_is_refused(arena, run, full_disk, monkeypatch, how, words):
    model = bad.valid_onnx(arena.inputs)
    before = arena.snapshot()
    with monkeypatch.context() as patch:  # undone before pytest itself needs a temporary file
        if how == "nearly-full":
            patch.setattr(tempfile, "tempdir", str(full_disk))
        else:
            patch.setattr(tempfile, "tempdir", None)
            patch.setattr(tempfile, "_candidate_tempdir_list", lambda: [str(full_disk)])
        result = run("view", model, "--no-browser")
    assert_refused(result, *words)
    assert arena.snapshot() == before  # the half-made private copy is gone


@pytest.mark.parametrize("command", ["verify", "bench", "view"])
def test_a_full_cache_disk_falls_back_to_a_temporary_export(
    arena, run, full_disk, command, monkeypatch
):
    from inspector.export import cache

    cache._said.clear()
    (full_disk / "cache").mkdir()
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(full_disk / "cache"))
    before = arena.snapshot()
    argv = {
        "verify": ["verify", "relu"],
        "bench": ["bench", "relu", "--batch-sizes", "1", "--runs", "1", "--warmup", "1"],
        "view": ["view", "relu", "--no-browser"],
    }[command]
    result = run(*argv)
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        f"inspector: warning: the export cache {full_disk / 'cache'} is full; "
        "exporting to a temporary folder instead"
    ]  # bench exports two graphs: said once
    assert arena.snapshot() == before


def test_full_disk_errors_without_a_tmpfs(tmp_path, monkeypatch):
    """The same refusals where no tmpfs can be mounted: the write itself fails with ENOSPC."""
    import errno

    from inspector.errors import InspectorError
    from inspector.onnx import testdata
    from inspector.util import files

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    report = tmp_path / "report.json"
    report.write_text("earlier\n")
    with monkeypatch.context() as patch:
        patch.setattr(files.os, "replace", no_space)
        with pytest.raises(InspectorError, match="cannot write --report .*No space left"):
            files.write_atomically(report, "new", f"--report {report}")
    monkeypatch.setattr(testdata, "_write_set", no_space)
    with pytest.raises(
        InspectorError, match="(--save-data |save_data=').*golden'?: No space left on device"
    ):
        testdata.write_test_data(tmp_path / "golden", [testdata.DataSet("x")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert report.read_text() == "earlier\n"


def test_a_full_cache_falls_back_without_a_tmpfs(monkeypatch, tmp_path, capsys):
    import errno

    from inspector.errors import InspectorError
    from inspector.export import cache
    from inspector.loading import load_model

    def export_onto_a_full_disk(loaded, path, **options):
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise InspectorError(f"cannot write {path.name}: {full.strerror}") from full

    cache._said.clear()
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "export_onnx", export_onto_a_full_disk)
    loaded = load_model("relu")
    assert cache.cached_export(loaded) is None
    assert cache.cached_export(loaded) is None
    assert capsys.readouterr().err.count("is full; exporting to a temporary folder") == 1
    assert list((tmp_path / "cache").iterdir()) == []


# Names with control characters: escaped wherever they are printed -------------------------------


def _golden_for_names(folder: Path, inputs: int = 1) -> Path:
    """Golden data for onnx_with_control_characters (y = -relu(x)), with `inputs` inputs."""
    import numpy as np
    from onnx import numpy_helper

    data_set = folder / "names-golden" / "test_data_set_0"
    data_set.mkdir(parents=True)
    x = np.random.default_rng(5).standard_normal((2, 4)).astype(np.float32)
    arrays = {f"input_{i}.pb": x for i in range(inputs)} | {"output_0.pb": -np.maximum(x, 0)}
    for name, array in arrays.items():
        (data_set / name).write_bytes(numpy_helper.from_array(array).SerializeToString())
    return data_set.parent


CONTROL_CASES = [
    ("summary", lambda d, m: ["summary", m], 0),
    ("summary-markdown", lambda d, m: ["summary", m, "--format", "markdown"], 0),
    ("verify-table", lambda d, m: ["verify", m, "--data", _golden_for_names(d)], 0),
    ("error-line", lambda d, m: ["verify", m, "--data", _golden_for_names(d, inputs=2)], 2),
]


@pytest.mark.parametrize("name, argv, code", CONTROL_CASES, ids=[c[0] for c in CONTROL_CASES])
def test_names_from_a_file_are_printed_escaped(arena, run, name, argv, code):
    model = bad.onnx_with_control_characters(arena.inputs)
    result = run(*argv(arena.inputs, model))
    assert result.code == code, result.err
    printed = result.out + result.err
    assert not any(c in printed for c in "\x1b\x07\x08\x00"), printed
    assert "inspector: PASSED" not in printed.splitlines()  # no forged line
    assert (
        "x\\x1b[2J\\x1b[H" if name != "verify-table" else "y\\ninspector: PASSED\\x00"
    ) in printed


@pytest.mark.browser
@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_render_draws_names_with_control_characters(arena, run, suffix):
    """Netron writes them into its SVG as they are, which no XML parser accepts."""
    import xml.etree.ElementTree as ElementTree

    from _netron_helpers import require_browser

    require_browser()
    model = bad.onnx_with_control_characters(arena.inputs)
    output = arena.out / f"names{suffix}"
    result = run("render", model, "-o", output)
    assert result.code == 0, result.err
    if suffix == ".svg":
        text = output.read_text(encoding="utf-8")
        ElementTree.fromstring(text)
        assert "x\\x1b[2J\\x1b[H" in text and "\x1b" not in text


# Files written keep their owner's intent: an existing file's mode, or the umask -----------------


@pytest.mark.parametrize("existing_mode", [0o600, 0o640, 0o4755])
def test_report_keeps_an_existing_files_permissions(arena, run, existing_mode):
    os.chmod(arena.report, existing_mode)
    result = run("verify", "relu", "--report", arena.report)
    assert result.code == 0, result.err
    assert '"passed": true' in arena.report.read_text()
    assert arena.report.stat().st_mode & 0o7777 == existing_mode & 0o777  # set-id bits dropped


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_a_new_report_follows_the_umask(arena, run, umask):
    from inspector.util.files import current_umask

    new_report = arena.out / "new-report.json"
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        result = run("verify", "relu", "--report", new_report)
        assert current_umask() == umask  # read without being changed
    finally:
        os.umask(previous)
    assert result.code == 0, result.err
    assert new_report.stat().st_mode & 0o777 == 0o666 & ~umask


# render of a graph too tall for a legible PNG ------------------------------------------------


@pytest.mark.parametrize(
    "width, height, warned",
    [(300, 900, False), (300, 30_000, False), (300, 70_000, True), (7, 10_000 * 60, True)],
)
def test_a_png_shrunk_past_legibility_is_called_so(capsys, width, height, warned):
    from inspector.netron.render import png_scale, warn_if_illegible

    warn_if_illegible(png_scale(width, height), width, height)
    err = capsys.readouterr().err
    assert bool(err) == warned, err
    if warned:
        assert err.startswith(f"inspector: warning: the graph is {width}x{height} CSS px")
        assert "-o NAME.svg" in err and "--depth" in err and len(err.splitlines()) == 1


@pytest.mark.browser
def test_render_of_a_huge_chain_warns_and_still_writes_the_png(arena, run, monkeypatch):
    """Netron's drawing of a 10,000-node chain, stood in for by an SVG of its size: the PNG is
    written, and the warning says how small it came out."""
    from _netron_helpers import require_browser

    from inspector.netron import render as render_module
    from inspector.netron.render import png_size

    require_browser()
    tall = 10_000 * 60
    svg = (
        f'<svg id="export" xmlns="http://www.w3.org/2000/svg" width="300" height="{tall}">'
        f'<rect width="300" height="{tall}" fill="#eee"/>'
        '<text x="10" y="20" font-size="11">input</text></svg>'
    )
    monkeypatch.setattr(render_module, "_netron_svg", lambda *a: (svg, 10_000))
    output = arena.out / "chain.png"
    result = run("render", bad.valid_onnx(arena.inputs), "-o", output)
    assert result.code == 0, result.err
    assert result.err.startswith("inspector: warning: the graph is 300x600000 CSS px")
    width, height = png_size(output.read_bytes())
    assert height <= 32767 and width >= 1
