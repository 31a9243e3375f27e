"""Hostile inputs, round 3: names escaped in every format, outputs that name an input, golden
data that lies about its size, stdout kept pure, check-all's per-model timeout, the cache's
permissions, and the odd ends (deep models, huge integers, FIFOs, signals, forks).

Same rules as tests/test_hostile.py, whose fixtures these reuse: a refusal is exit 2 and one line,
no traceback, and the folder it ran in unchanged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import _hostile_files as bad
import pytest
import test_hostile as hostile
import test_interrupts as interrupts
import torch
from inspector.models._registry import _REGISTRY, ModelEntry
from torch import nn

# test_hostile's fixtures: an arena folder, an in-process run with fd-level capture.
arena, run, export_cache = hostile.arena, hostile.run, hostile.export_cache
assert_refused = hostile.assert_refused
held_in_the_checker = interrupts.held_in_the_checker

# A name that clears the screen and reverses the text after it, one that forges a verdict.
FORGED = "y\nPASSED | all forged"
HOSTILE_NAMES = ("x\x1b[2J\u202eevil", "h", FORGED)
CONTROLS = "\x1b\x07\x00\u202e"


def _onnx_named(folder: Path, names: tuple[str, str, str], file: str) -> Path:
    """y = -relu(x), its input, hidden value and output named `names`."""
    import onnx
    from onnx import TensorProto, helper

    x, hidden, y = names
    graph = helper.make_graph(
        [helper.make_node("Relu", [x], [hidden]), helper.make_node("Neg", [hidden], [y])],
        "g",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = folder / file
    onnx.save(model, str(path))
    return path


def _no_forged_line(text: str) -> None:
    assert not any(c in text for c in CONTROLS), text
    assert not any(line.startswith("PASSED |") for line in text.splitlines()), text


# Names from a file or a model are escaped in every format ----------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_diff_prints_value_names_escaped(arena, run, fmt):
    a = _onnx_named(arena.inputs, HOSTILE_NAMES, "a.onnx")
    b = _onnx_named(arena.inputs, ("x", "h|pipe", "y|z"), "b.onnx")
    result = run("diff", a, b, "--structure-only", "--format", fmt)
    assert result.code == 1, result.err
    _no_forged_line(result.out + result.err)
    assert "x\\x1b[2J\\u202eevil" in result.out and "y\\nPASSED" in result.out
    if fmt == "markdown":
        rows = [line for line in result.out.splitlines() if line.startswith("| ")]
        header = next(row for row in rows if row.startswith("| tensor "))
        columns = header.count(" | ")
        table = rows[rows.index(header) + 1 :]
        assert any("y\\|z" in row for row in table), table
        for row in table:  # a `|` in a name adds no column
            assert row.replace("\\|", "").count(" | ") == columns, row


def test_summary_markdown_escapes_a_pipe_in_a_name(arena, run):
    model = _onnx_named(arena.inputs, ("x|a", "h", "y|b"), "pipes.onnx")
    result = run("summary", model, "--format", "markdown")
    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if "| input |" in line or "| output |" in line]
    assert len(rows) == 2, result.out
    assert all(row.replace("\\|", "").count("|") == 5 for row in rows), rows
    assert "x\\|a" in result.out


class _Pipes(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("a|b", nn.Linear(4, 3))

    def forward(self, x):
        return self.get_submodule("a|b")(x)


def test_torch_summary_markdown_escapes_a_pipe_in_a_layer_name(run, monkeypatch):
    monkeypatch.setitem(_REGISTRY, "zz_pipes", ModelEntry("zz_pipes", _Pipes, "pipes", ((2, 4),)))
    result = run("summary", "zz_pipes", "--format", "markdown")
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "Linear" in line)
    assert "a\\|b" in row and row.replace("\\|", "").count("|") == 5, row


class _Raises(nn.Module):
    """Its forward fails with a message holding escapes, a forged line and a lone surrogate."""

    def forward(self, x):
        raise ValueError("bad \ud800 value\x1b[31m\nPASSED | all 9 model(s) export and verify")


class _Fine(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2


@pytest.fixture
def hostile_zoo(monkeypatch):
    for name, builder in (("zz_fine", _Fine), ("zz_\x1b[2J\u202e|\nPASSED | bad\x01", _Raises)):
        monkeypatch.setitem(_REGISTRY, name, ModelEntry(name, builder, "hostile", ((2, 4),)))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_check_all_escapes_names_and_messages_and_survives_a_lone_surrogate(
    arena, run, hostile_zoo, fmt
):
    junit = arena.out / "junit.xml"
    result = run("check-all", "--pattern", "zz_*", "--junit-xml", junit, "--format", fmt)
    assert result.code == 1, result.err  # one model fails; no internal error
    _no_forged_line(result.out + result.err)
    assert "\x01" not in result.out + result.err
    if fmt == "json":
        verdicts = {entry["model"]: entry["verdict"] for entry in json.loads(result.out)["models"]}
        assert sorted(verdicts.values()) == ["ERROR", "PASSED"]
    else:
        assert "\\ud800" in result.out and "zz_\\x1b[2J\\u202e|\\nPASSED | bad\\x01" in result.out
    cases = ElementTree.fromstring(junit.read_bytes()).findall(".//testcase")
    names = sorted(case.get("name") for case in cases)
    assert names == ["zz_\\x1b[2J\\u202e|\\nPASSED | bad\\x01", "zz_fine"], names


# --format json: stdout holds the document only, whatever the model writes to descriptor 1 --------


class _WritesToDescriptor1(nn.Module):
    def forward(self, x):
        import os
        import sys

        os.write(1, b"written to fd 1\n")
        print("written to sys.__stdout__", file=sys.__stdout__)  # buffered: flushed later
        return x * 2


@pytest.mark.parametrize("command", ["summary", "verify"])
def test_json_stdout_is_pure_when_the_model_writes_to_descriptor_1(
    arena, run, monkeypatch, command
):
    entry = ModelEntry("zz_fd1", _WritesToDescriptor1, "writes to fd 1", ((2, 4),))
    monkeypatch.setitem(_REGISTRY, "zz_fd1", entry)
    result = run(command, "zz_fd1", "--format", "json")
    assert result.code == 0, result.err
    json.loads(result.out)  # nothing else on stdout
    assert "written to fd 1" in result.err


FD1_MODEL = """
import os, sys
import torch

class Net(torch.nn.Module):
    def forward(self, x):
        os.write(1, b"written to fd 1\\n")
        print("written to sys.__stdout__", file=sys.__stdout__)
        return x * 2
"""


def test_json_stdout_is_pure_in_a_real_process(tmp_path):
    (tmp_path / "net.py").write_text(FD1_MODEL)
    argv = ["summary", "net.py:Net", "--input-shape", "2,4", "--format", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "inspector", *argv],
        cwd=tmp_path,
        env=bad.cli_env(),
        capture_output=True,
        text=True,
        timeout=hostile.STARTUP_LIMIT,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 0
    assert "written to fd 1" in done.stderr and "written to sys.__stdout__" in done.stderr


# An output that names an input, or another output, is refused before any work -------------------

BUILT: list[str] = []


class _Counted(nn.Module):
    """Records that it was built: a refusal must come before the model is even made."""

    def __init__(self):
        super().__init__()
        BUILT.append("built")
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x)


@pytest.fixture
def counted(monkeypatch):
    BUILT.clear()
    monkeypatch.setitem(_REGISTRY, "zz_counted", ModelEntry("zz_counted", _Counted, "c", ((2, 4),)))
    return "zz_counted"


def _golden(arena) -> tuple[Path, Path]:
    model = bad.valid_onnx(arena.inputs, "v.onnx")
    return model, bad.golden_data(arena.inputs / "gold")


SELF_NAMING = {
    "report-is-the-model": lambda m, g, out: ["verify", m, "--data", g, "--report", m],
    "report-is-golden-pb": lambda m, g, out: [
        "verify",
        m,
        "--data",
        g,
        "--report",
        g / "test_data_set_0" / "output_0.pb",
    ],
    "report-is-onnx": lambda m, g, out: ["verify", "zz_counted", "--onnx", m, "--report", m],
    "report-in-save-data": lambda m, g, out: [
        "verify",
        "zz_counted",
        "--save-data",
        out / "both",
        "--report",
        out / "both",
    ],
    "save-data-is-onnx": lambda m, g, out: ["verify", "zz_counted", "--onnx", m, "--save-data", m],
}


@pytest.mark.parametrize("case", list(SELF_NAMING))
def test_an_output_that_names_an_input_is_refused_before_the_work(arena, run, counted, case):
    model, golden = _golden(arena)
    before = arena.snapshot()
    result = run(*SELF_NAMING[case](model, golden, arena.out))
    assert_refused(result, "--")
    assert arena.snapshot() == before
    assert not BUILT


def test_export_refuses_to_write_over_its_own_model_file(arena, run):
    source = arena.inputs / "net.py"
    source.write_text("import torch\n\nclass Net(torch.nn.Linear):\n    pass\n")
    before = arena.snapshot()
    result = run(
        "export",
        f"{source}:Net",
        "-k",
        "in_features=4",
        "-k",
        "out_features=2",
        "--input-shape",
        "2,4",
        "-o",
        source,
    )
    assert_refused(result, "names the input")
    assert arena.snapshot() == before


@pytest.mark.parametrize("option", ["--report", "--save-data"])
def test_a_read_only_destination_is_refused_before_the_work(arena, run, counted, option):
    folder = arena.out / "read-only"
    folder.mkdir()
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip()}")
    try:
        result = run("verify", "zz_counted", option, folder / "result")
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert_refused(result, "cannot write", str(folder))
    assert not BUILT


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_save_data_folders_follow_the_umask(arena, run, umask):
    previous = os.umask(umask)
    try:
        result = run("verify", "relu", "--save-data", arena.out / "data")
    finally:
        os.umask(previous)
    assert result.code == 0, result.err
    for folder in (arena.out / "data", arena.out / "data" / "test_data_set_0"):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder


# Golden data: an unknown element type, and a file larger than the model's tensors can be ---------


def _golden_with(arena, name: str, data: bytes | None = None, size: int | None = None) -> Path:
    golden = bad.golden_data(arena.inputs / "gold")
    path = golden / "test_data_set_0" / name
    if data is not None:
        path.write_bytes(data)
    if size is not None:
        with path.open("r+b") as handle:
            handle.truncate(size)  # sparse: claims `size` bytes, stores none of them
    return golden


def test_golden_tensor_with_an_unknown_element_type_is_refused(arena, run):
    from onnx import TensorProto

    tensor = TensorProto(name="x", dims=[2, 4], data_type=999, raw_data=b"\x01" * 32)
    golden = _golden_with(arena, "input_0.pb", tensor.SerializeToString())
    model = bad.valid_onnx(arena.inputs)
    result = run("verify", model, "--data", golden)
    assert_refused(result, "input_0.pb", "999")


def _fixed_shape_onnx(folder: Path) -> Path:
    """y = relu(x), x and y declared [2, 4]."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = folder / "fixed.onnx"
    onnx.save(model, str(path))
    return path


def test_golden_file_larger_than_the_declared_shape_is_refused_unread(arena, run):
    golden = _golden_with(arena, "output_0.pb", size=64 * 2**20)
    result = run("verify", _fixed_shape_onnx(arena.inputs), "--data", golden)
    assert_refused(result, "output_0.pb", "67,108,864 bytes", "refusing to read it", "[2, 4]")


def test_golden_file_larger_than_memory_allows_is_refused_unread(arena, monkeypatch):
    """Where the model's batch is symbolic, half the available memory is the cap. (verify runs
    this in a child process: the cap is tested here, in-process, with the memory faked.)"""
    from types import SimpleNamespace

    from inspector.errors import InspectorError
    from inspector.onnx import golden as golden_module
    from inspector.onnx.testdata import read_test_data

    monkeypatch.setattr(golden_module, "available_memory", lambda: 64 * 2**20)
    spec = SimpleNamespace(name="x", type="tensor(float)", shape=["batch", 4])
    session = SimpleNamespace(get_inputs=lambda: [spec], get_outputs=lambda: [spec])
    limit = golden_module.size_limit(session)
    assert limit("input", 0) == (32 * 2**20, "half the memory available")
    golden = _golden_with(arena, "input_0.pb", size=64 * 2**20)
    with pytest.raises(InspectorError, match="half the memory available.*refusing to read it"):
        read_test_data(golden, limit=limit)


# check-all --timeout: a model that hangs or is killed fails alone ---------------------------------


class _Hangs(nn.Module):
    def forward(self, x):
        import time

        time.sleep(3600)
        return x


class _KillsItself(nn.Module):
    """What the kernel's OOM killer does to a process that allocates too much."""

    def forward(self, x):
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
        return x


@pytest.fixture
def zoo_with(monkeypatch):
    def register(**builders):
        for name, builder in builders.items():
            entry = ModelEntry(name, builder, "round 3", ((2, 4),))
            monkeypatch.setitem(_REGISTRY, name, entry)

    return register


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_check_all_timeout_fails_a_hanging_model_and_goes_on(arena, run, zoo_with, jobs):
    zoo_with(zz_fine=_Fine, zz_hangs=_Hangs)
    # The clock starts once the worker has imported torch: 15 s is ample for a tiny model.
    argv = ["check-all", "--pattern", "zz_*", "--timeout", "15", "--jobs", jobs]
    result = run(*argv, "--format", "json")
    assert result.code == 1, result.err
    entries = {entry["model"]: entry for entry in json.loads(result.out)["models"]}
    assert entries["zz_fine"]["verdict"] == "PASSED", entries["zz_fine"]["error"]
    assert entries["zz_hangs"]["verdict"] == "ERROR"
    assert "timed out" in entries["zz_hangs"]["error"] and "15 s" in entries["zz_hangs"]["error"]


def test_check_all_goes_on_when_the_system_kills_a_model_with_jobs_1(arena, run, zoo_with):
    zoo_with(zz_fine=_Fine, zz_killed=_KillsItself)
    result = run("check-all", "--pattern", "zz_*", "--format", "json")
    assert result.code == 1, result.err
    entries = {entry["model"]: entry for entry in json.loads(result.out)["models"]}
    assert entries["zz_fine"]["verdict"] == "PASSED", entries["zz_fine"]["error"]
    assert "killed by SIGKILL" in entries["zz_killed"]["error"]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_check_all_refuses_a_timeout_that_is_not_seconds(run, value):
    result = run("check-all", "--timeout", value)
    assert_refused(result, "--timeout")


# The export cache is its owner's: a world-writable folder or entry is not trusted ----------------


def test_a_world_writable_cache_folder_is_not_used(arena, run, monkeypatch):
    cache = arena.root / "shared-cache"
    cache.mkdir()
    cache.chmod(0o777)
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(cache))
    result = run("verify", "relu")
    assert result.code == 0, result.err
    assert "writable by every user" in result.err and str(cache) in result.err
    assert not list(cache.iterdir())  # nothing read from it, nothing written to it


def test_a_world_writable_cache_entry_is_made_again(arena, run, monkeypatch):
    cache = arena.root / "cache"
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(cache))
    assert run("verify", "relu").code == 0
    (entry,) = cache.glob("*.onnx")
    entry.chmod(0o666)
    result = run("verify", "relu")
    assert result.code == 0, result.err
    (again,) = cache.glob("*.onnx")
    assert not again.stat().st_mode & 0o002  # exported afresh (a file used as it was keeps 0666)


# The odd ends: deep models, huge integers, FIFOs and devices, SIGQUIT, finalizers, forks ---------

DEEP_MODEL = """
import torch

class Wrap(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)

def deep():
    module = torch.nn.Linear(4, 4)
    for _ in range(2000):
        module = Wrap(module)
    return module
"""


@pytest.mark.parametrize("command", ["summary", "export"])
def test_a_model_nested_2000_deep_is_one_line(arena, run, command):
    (arena.inputs / "deep.py").write_text(DEEP_MODEL)
    before = arena.snapshot()
    result = run(command, arena.inputs / "deep.py:deep", "--input-shape", "2,4")
    assert_refused(result, "nested too deeply")
    assert arena.snapshot() == before


def test_an_integer_too_large_for_torch_is_one_short_line(arena, run):
    result = run("summary", "linear", "-k", f"out_features={2**63}")
    assert_refused(result, "Overflow")
    assert "frame #" not in result.err and len(result.err) < 400, result.err


def test_a_fifo_model_file_is_named_for_what_it_is(arena, run):
    fifo = arena.inputs / "net.py"
    os.mkfifo(fifo)
    assert_refused(run("summary", f"{fifo}:Net"), "FIFO")


def test_a_device_given_as_model_is_named_for_what_it_is(arena, run):
    assert_refused(run("summary", "/dev/zero"), "/dev/zero is a device")


def _inspector(tmp_path: Path, *argv, timeout: float = hostile.STARTUP_LIMIT):
    return subprocess.run(
        [sys.executable, "-m", "inspector", *map(str, argv)],
        cwd=tmp_path,
        env=bad.cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


FINALIZER_MODEL = """
import sys
import torch

class Net(torch.nn.Linear):
    def __init__(self):
        super().__init__(4, 3)

    def __del__(self):
        sys.exit(7)
"""


def test_a_finalizer_calling_sys_exit_prints_nothing(tmp_path):
    (tmp_path / "net.py").write_text(FINALIZER_MODEL)
    done = _inspector(tmp_path, "summary", "net.py:Net", "--input-shape", "2,4")
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


FORKING_MODEL = """
import os
import torch

class Net(torch.nn.Linear):
    def __init__(self):
        super().__init__(4, 3)

    def forward(self, x):
        os.fork()  # the child comes back into inspector: it must go no further
        return super().forward(x)
"""


def test_a_fork_in_forward_does_not_run_inspector_twice(tmp_path):
    (tmp_path / "net.py").write_text(FORKING_MODEL)
    done = _inspector(tmp_path, "summary", "net.py:Net", "--input-shape", "2,4", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 15  # one document: the child printed none


def test_sigquit_mid_export_leaves_no_staging_folder(tmp_path, held_in_the_checker):
    root, out, tmpdir, existing = _interrupt_folders(tmp_path)
    held, marker = held_in_the_checker
    before = bad.snapshot(root)
    process = interrupts._start(
        ["export", "conv_bn_relu", "--input-shape", "1,3,8,8", "-o", existing],
        cwd=root,
        TMPDIR=tmpdir,
        INSPECTOR_CACHE_DIR=root / "cache",
        **held,
    )
    interrupts._wait_for(lambda: any(out.glob(".inspector-export-*")), process, "staging")
    interrupts._wait_for(lambda: marker.exists() and marker.read_text(), process, "the checker")
    code, _, err = interrupts._interrupt(process, signum=signal.SIGQUIT)
    last = err.strip().splitlines()[-1]  # after the progress steps
    assert (code, last) == (131, "inspector: interrupted by SIGQUIT"), err
    assert bad.snapshot(root) == before


def test_sigquit_stops_view_and_removes_its_private_copy(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    model = bad.valid_onnx(tmp_path)
    before = bad.snapshot(tmp_path)
    process = interrupts._start(["view", model, "--no-browser"], cwd=tmp_path, TMPDIR=tmpdir)
    assert "Netron is serving tiny.onnx" in process.stdout.readline()
    code, _, err = interrupts._interrupt(process, signum=signal.SIGQUIT)
    assert (code, err.strip()) == (131, "inspector: interrupted by SIGQUIT"), err
    assert bad.snapshot(tmp_path) == before  # TMPDIR empty again


def _interrupt_folders(tmp_path: Path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmpdir.mkdir()
    existing = out / "model.onnx"
    existing.write_bytes(b"the previous export, which must survive\n")
    return tmp_path, out, tmpdir, existing


# Netron's guard: a second host named another way ------------------------------------------------


def _ask(port: int, target: str, *hosts: str) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=hostile.STARTUP_LIMIT)
    try:
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        for host in hosts:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_netron_guard_refuses_a_foreign_absolute_target_and_duplicate_hosts(tmp_path):
    from inspector.netron.guard import serve_guarded

    model = bad.valid_onnx(tmp_path)
    server = serve_guarded(model, "127.0.0.1", 0, remote=False)
    try:
        port = server.address[1]
        ours, theirs = f"127.0.0.1:{port}", "rebind.attacker.example"
        data = f"/data/{model.name}"
        answers = {
            "ours": _ask(port, data, ours),
            "absolute-ours": _ask(port, f"http://{ours}{data}", ours),
            "absolute-theirs": _ask(port, f"http://{theirs}{data}", ours),
            "absolute-theirs-port": _ask(port, f"http://{theirs}:{port}{data}", ours),
            "two-hosts-ours-first": _ask(port, data, ours, theirs),
            "two-hosts-theirs-first": _ask(port, data, theirs, ours),
            "two-hosts-both-ours": _ask(port, data, ours, ours),
        }
    finally:
        server.stop()
    statuses = {name: status for name, (status, _) in answers.items()}
    assert statuses == {
        "ours": 200,
        "absolute-ours": 200,
        "absolute-theirs": 400,
        "absolute-theirs-port": 400,
        "two-hosts-ours-first": 400,
        "two-hosts-theirs-first": 400,
        "two-hosts-both-ours": 400,
    }
    assert answers["ours"][1] == model.read_bytes()
    assert all(model.read_bytes() not in body for status, body in answers.values() if status != 200)
