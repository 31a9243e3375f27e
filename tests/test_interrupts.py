"""Ctrl-C, SIGTERM, SIGHUP: a command interrupted mid-work exits 128 + signal and leaves nothing
half-written; what SIGKILL leaves, the next run removes.

Each test starts a real `python -m inspector ...`, waits until the work has visibly begun (a
staging folder, or a marker written from inside the work by a `sitecustomize` shim that holds the
work there) rather than sleeping a fixed time, checks it is still running, then sends the signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _hostile_files as bad
import pytest
from conftest import split_steps

MODEL = "conv_bn_relu"
SMALL = ["--input-shape", "1,3,8,8"]
STARTUP_LIMIT = 120  # seconds: torch's import on a loaded 2-core machine can take a while
# `python -m inspector`, with SIGHUP back to its default should this suite run under nohup.
LAUNCH = (
    "import runpy, signal; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "runpy.run_module('inspector', run_name='__main__')"
)


def _start(argv, cwd: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *map(str, argv)],
        cwd=cwd,
        env=bad.cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: we can signal it like a terminal would
    )


def _wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"exited ({process.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no sign of {what} after {STARTUP_LIMIT} s")
        time.sleep(0.01)


def _interrupt(
    process: subprocess.Popen, group: bool = False, signum: int = signal.SIGINT
) -> tuple[int, str, str]:
    if process.poll() is not None:
        out, err = process.communicate()
        pytest.fail(f"finished ({process.returncode}) before it could be interrupted: {err}")
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, split_steps(err)[0]  # what it said besides its progress


@pytest.fixture
def folders(tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmpdir.mkdir()
    existing = out / "model.onnx"
    existing.write_bytes(b"the previous export, which must survive\n")
    return tmp_path, out, tmpdir, existing


SIGNALS = {  # what each ends with: 128 + signal, and its line
    signal.SIGINT: (130, "inspector: interrupted"),
    signal.SIGTERM: (143, "inspector: interrupted by SIGTERM"),
    signal.SIGHUP: (129, "inspector: interrupted by SIGHUP"),
}


@pytest.fixture
def held_in_the_checker(tmp_path_factory) -> tuple[dict, Path]:
    """Environment for a child whose onnx checker writes a marker and then waits: whatever calls
    the checker (an export checking what it wrote, the child process that checks a file) is
    caught mid-work, for as long as the test needs. The shim lives outside the tested folders."""
    shim = tmp_path_factory.mktemp("shim")
    (shim / "sitecustomize.py").write_text(_SLOW_CHECKER)
    marker = shim / "check-started"
    return {"PYTHONPATH": f"{bad.REPO}{os.pathsep}{shim}", "CHECK_STARTED": marker}, marker


@pytest.mark.parametrize(
    "signum, moment",
    [
        (signal.SIGINT, "as-staging-starts"),
        (signal.SIGINT, "mid-export"),
        (signal.SIGTERM, "mid-export"),
        (signal.SIGHUP, "mid-export"),
    ],
    ids=["sigint-as-staging-starts", "sigint-mid-export", "sigterm", "sighup"],
)
def test_interrupted_export_leaves_nothing_half_written(
    folders, signum, moment, held_in_the_checker
):
    root, out, tmpdir, existing = folders
    held, marker = held_in_the_checker
    before = bad.snapshot(root)
    process = _start(
        ["export", MODEL, *SMALL, "-o", existing],
        cwd=root,
        TMPDIR=tmpdir,
        INSPECTOR_CACHE_DIR=root / "cache",
        **(held if moment == "mid-export" else {}),
    )
    _wait_for(lambda: any(out.glob(".inspector-export-*")), process, "the staging folder")
    if moment == "mid-export":  # the model is exported, its file not yet checked nor written
        _wait_for(lambda: marker.exists() and marker.read_text(), process, "the checker")
    code, _, err = _interrupt(process, signum=signum)
    assert (code, err.strip().splitlines()) == (SIGNALS[signum][0], [SIGNALS[signum][1]]), err
    assert bad.snapshot(root) == before  # no staging folder, no .onnx.data, destination intact


@pytest.mark.parametrize(
    "signum, code", [(signal.SIGINT, 0), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_view_stopped_by_a_signal_removes_its_private_copy(tmp_path, signum, code):
    """Ctrl-C is how one stops view (exit 0); a kill or a closed terminal ends it too, cleanly."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    model = bad.valid_onnx(tmp_path)
    before = bad.snapshot(tmp_path)
    process = _start(["view", model, "--no-browser"], cwd=tmp_path, TMPDIR=tmpdir)
    assert "Netron is serving tiny.onnx" in process.stdout.readline()
    assert len(list(tmpdir.glob("inspector-netron-*"))) == 1
    returned, out, err = _interrupt(process, signum=signum)
    assert returned == code, err
    assert out.strip() == "Netron stopped"
    assert err.strip().splitlines() == ([SIGNALS[signum][1]] if code else [])
    assert bad.snapshot(tmp_path) == before  # TMPDIR empty again


def test_what_sigkill_leaves_the_next_run_removes(folders):
    """SIGKILL cannot be caught: the staging folder stays, named after its dead owner, until the
    next export into that folder."""
    root, out, tmpdir, existing = folders
    argv = ["export", MODEL, *SMALL, "-o", existing]
    env = dict(TMPDIR=tmpdir, INSPECTOR_CACHE_DIR=root / "cache")
    process = _start(argv, cwd=root, **env)
    _wait_for(lambda: any(out.glob(".inspector-export-*")), process, "the staging folder")
    process.kill()
    process.communicate(timeout=60)
    (left,) = out.glob(".inspector-export-*")
    assert f"-{process.pid}-" in left.name

    process = _start(argv, cwd=root, **env)
    _, err = process.communicate(timeout=STARTUP_LIMIT)
    assert process.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]
    assert existing.read_bytes().startswith(b"\x08")  # an ONNX file now (ir_version field)


_SLOW_CHECKER = """\
import os, time
import onnx.checker

def slow_check(*args, **kwargs):
    with open(os.environ["CHECK_STARTED"], "w") as marker:
        marker.write(str(os.getpid()))
    time.sleep(60)

onnx.checker.check_model = slow_check
"""


@pytest.mark.parametrize("group", [False, True], ids=["parent-only", "whole-group"])
def test_interrupt_while_the_child_checks_an_onnx_file(tmp_path, group, held_in_the_checker):
    """The checker's child process is stopped with the CLI, which exits 130."""
    held, marker = held_in_the_checker
    model = bad.valid_onnx(tmp_path)
    data = tmp_path / "golden"
    data.mkdir()
    process = _start(["verify", model, "--data", data], cwd=tmp_path, **held)
    _wait_for(lambda: marker.exists() and marker.read_text(), process, "the checker")
    child = int(marker.read_text())
    code, out, err = _interrupt(process, group=group)
    assert code == 130, err
    assert err.strip().splitlines() == ["inspector: interrupted"]
    assert out == ""
    # Killed and reaped by the CLI itself: not running on, and not a zombie left for init.
    assert not Path(f"/proc/{child}").exists()


@pytest.mark.parametrize("moment", ["as-it-starts", "mid-model"])
def test_interrupted_check_all_leaves_no_temporary_files(folders, moment, held_in_the_checker):
    root, _, tmpdir, _ = folders
    held, marker = held_in_the_checker
    before = bad.snapshot(root)
    process = _start(
        ["check-all", "--pattern", "conv*", "--no-cache"],  # exports into temporary folders
        cwd=root,
        TMPDIR=tmpdir,
        INSPECTOR_CACHE_DIR=root / "cache",
        **(held if moment == "mid-model" else {}),
    )
    _wait_for(lambda: any(tmpdir.glob("inspector-*")), process, "its temporary folder")
    if moment == "mid-model":
        _wait_for(lambda: marker.exists() and marker.read_text(), process, "the checker")
    code, _, err = _interrupt(process)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "inspector: interrupted"
    assert bad.snapshot(root) == before  # TMPDIR empty again, nothing in the cwd


# A Ctrl-C a library swallowed (torch does, mid-import) must still stop the final rename ----------


def _swallowing(real):
    """`real`, preceded by a Ctrl-C that lands inside it and is swallowed there."""
    from inspector import errors

    def call(*args, **kwargs):
        with contextlib.suppress(KeyboardInterrupt):
            errors.note_interrupt()
        return real(*args, **kwargs)

    return call


# command -> (its argv, OUT the destination's folder; the step where a library swallows a Ctrl-C)
SWALLOWED_CASES = {
    "export": (["export", "relu", "-o", "{out}/model.onnx"], "export.exporter:_write_and_check"),
    "verify --report": (
        ["verify", "relu", "--report", "{out}/report.json"],
        "onnx.report:VerifyReport.to_dict",
    ),
    "verify --save-data": (
        ["verify", "relu", "--save-data", "{out}/golden"],
        "onnx.testdata:_write_set",
    ),
}


@pytest.mark.parametrize("command", list(SWALLOWED_CASES))
def test_a_swallowed_interrupt_still_leaves_the_destination_untouched(
    folders, cli, monkeypatch, command
):
    import importlib

    root, out, _, _ = folders
    (out / "report.json").write_text("the previous report\n")
    argv, where = SWALLOWED_CASES[command]
    module_name, _, path = where.partition(":")
    owner = importlib.import_module(f"inspector.{module_name}")
    *parents, attr = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    monkeypatch.setattr(owner, attr, _swallowing(getattr(owner, attr)))
    before = bad.snapshot(root)
    result = cli(*[a.format(out=out) for a in argv])
    assert result.code == 130, result.err
    assert result.err.strip().splitlines()[-1] == "inspector: interrupted"
    assert bad.snapshot(root) == before


def test_write_atomically_keeps_the_old_file_after_a_swallowed_interrupt(tmp_path):
    from inspector import errors
    from inspector.util.files import write_atomically

    path = tmp_path / "graph.png"
    path.write_bytes(b"old")
    _swallowing(lambda: None)()
    try:
        with pytest.raises(KeyboardInterrupt):
            write_atomically(path, b"new")
    finally:
        errors.forget_interrupts()
    assert [p.name for p in tmp_path.iterdir()] == ["graph.png"]
    assert path.read_bytes() == b"old"


# What a killed run left, the next one removes: only folders of dead processes of this host -------


def _leftovers(parent: Path, prefix: str) -> dict[str, Path]:
    """A folder each of a dead process, a live one, and another host; all with a file inside."""
    from inspector.util import leftovers

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    host = leftovers._host()
    folders = {
        "dead": parent / f"{prefix}{host}-{child.pid}-abc123",
        "alive": parent / f"{prefix}{host}-{os.getpid()}-def456",
        "other-host": parent / f"{prefix}elsewhere-{child.pid}-ghi789",
        "old-style": parent / f"{prefix}jkl012",
    }
    for folder in folders.values():
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half an export")
    return folders


def test_export_removes_the_staging_folders_of_dead_runs(folders, cli):
    _, out, _, existing = folders
    left = _leftovers(out, ".inspector-export-")
    result = cli("export", "relu", "-o", existing)
    assert result.code == 0, result.err
    assert not left["dead"].exists()
    assert all(left[k].is_dir() for k in ("alive", "other-host", "old-style"))


def test_view_and_temporary_exports_remove_private_copies_of_dead_runs(folders, cli, monkeypatch):
    from inspector.netron import serve

    _, _, tmpdir, _ = folders
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    copies = _leftovers(tmpdir, "inspector-netron-")
    exports = _leftovers(tmpdir, "inspector-export-")

    def ctrl_c():
        raise KeyboardInterrupt

    monkeypatch.setattr(serve, "wait_for_ctrl_c", ctrl_c)
    result = cli("view", "relu", "--no-browser", "--no-cache")
    assert result.code == 0, result.err
    for left in (copies, exports):
        assert not left["dead"].exists()
        assert all(left[k].is_dir() for k in ("alive", "other-host", "old-style"))
    assert len(list(tmpdir.iterdir())) == 6  # the others; this run's own are gone too


@pytest.mark.parametrize("before, installed", [("default", True), ("ignored", False)])
def test_sighup_is_handled_unless_ignored_as_under_nohup(before, installed):
    from inspector.cli import _interrupts_remembered
    from inspector.errors import note_interrupt

    previous = signal.signal(
        signal.SIGHUP, signal.SIG_DFL if before == "default" else signal.SIG_IGN
    )
    try:
        with _interrupts_remembered():
            assert (signal.getsignal(signal.SIGHUP) is note_interrupt) == installed
            assert signal.getsignal(signal.SIGTERM) is note_interrupt
        assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGHUP, previous)


def _staging_block(tmp_path):
    from inspector.util.leftovers import owned_folder_removed

    return owned_folder_removed(".inspector-export-", tmp_path)


def _inductor_block(tmp_path):
    from inspector.util.inductor import inductor_cache_removed

    return inductor_cache_removed()


@pytest.mark.parametrize("block", [_staging_block, _inductor_block], ids=["staging", "inductor"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_just_after_the_folder_is_made_still_removes_it(
    tmp_path, monkeypatch, signum, block
):
    # A check-all worker told to stop the moment its staging folder appears (the test above waits
    # for exactly that) left the folder: the signal landed before the `try` that removes it.
    from inspector.cli import _interrupts_remembered
    from inspector.errors import forget_interrupts
    from inspector.util import leftovers
    from inspector.util.inductor import CACHE_VARIABLE

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    made = leftovers.owned_folder

    def made_then_signalled(prefix, parent=None):
        folder = made(prefix, parent)
        signal.raise_signal(signum)  # its handler runs before this function returns
        return folder

    monkeypatch.setattr(leftovers, "owned_folder", made_then_signalled)
    # As a command runs: an ignored SIGTERM (some job runners) would stay ignored.
    previous = signal.signal(signum, signal.SIG_DFL)
    try:
        with _interrupts_remembered(), pytest.raises(KeyboardInterrupt), block(tmp_path):
            pytest.fail("the signal should have stopped the block before it began")
    finally:
        signal.signal(signum, previous)
        forget_interrupts()
    assert list(tmp_path.iterdir()) == []
    assert CACHE_VARIABLE not in os.environ


# Before the work: 130 and one line. After it (the list printed): the command's own status, as
# for `view`, which Ctrl-C ends by design.
@pytest.mark.parametrize(
    "when, code, err", [("set-up", 130, "inspector: interrupted\n"), ("clean-up", 0, "")]
)
def test_a_ctrl_c_while_the_command_sets_up_or_cleans_up_is_no_traceback(
    cli, monkeypatch, when, code, err
):
    # check-all's Ctrl-C "as it starts" landed once just after inspector's first temporary
    # folder was made, while main() was still entering the command's contexts: a traceback.
    import inspector.cli as cli_module
    from inspector.errors import forget_interrupts, note_interrupt

    @contextlib.contextmanager
    def interrupted_steps(stream):
        if when == "set-up":
            note_interrupt(signal.SIGINT)
        yield
        note_interrupt(signal.SIGINT)

    monkeypatch.setattr(cli_module, "steps_shown", interrupted_steps)
    try:
        result = cli("list")
    finally:
        forget_interrupts()
    assert (result.code, result.err) == (code, err)
