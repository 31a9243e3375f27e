"""Ctrl-C: a command interrupted mid-work exits 130 and leaves nothing half-written.

Each test starts a real `python -m inspector ...`, waits until the work has visibly begun (a
staging folder, or a marker written from inside the work by a `sitecustomize` shim that holds the
work there) rather than sleeping a fixed time, checks it is still running, then sends SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _hostile_files as bad
import pytest

MODEL = "conv_bn_relu"
SMALL = ["--input-shape", "1,3,8,8"]
STARTUP_LIMIT = 120  # seconds: torch's import on a loaded 2-core machine can take a while


def _start(argv, cwd: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "inspector", *map(str, argv)],
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


def _interrupt(process: subprocess.Popen, group: bool = False) -> tuple[int, str, str]:
    if process.poll() is not None:
        out, err = process.communicate()
        pytest.fail(f"finished ({process.returncode}) before it could be interrupted: {err}")
    if group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


@pytest.fixture
def folders(tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmpdir.mkdir()
    existing = out / "model.onnx"
    existing.write_bytes(b"the previous export, which must survive\n")
    return tmp_path, out, tmpdir, existing


@pytest.fixture
def held_in_the_checker(tmp_path_factory) -> tuple[dict, Path]:
    """Environment for a child whose onnx checker writes a marker and then waits: whatever calls
    the checker (an export checking what it wrote, the child process that checks a file) is
    caught mid-work, for as long as the test needs. The shim lives outside the tested folders."""
    shim = tmp_path_factory.mktemp("shim")
    (shim / "sitecustomize.py").write_text(_SLOW_CHECKER)
    marker = shim / "check-started"
    return {"PYTHONPATH": f"{bad.REPO}{os.pathsep}{shim}", "CHECK_STARTED": marker}, marker


@pytest.mark.parametrize("moment", ["as-staging-starts", "mid-export"])
def test_interrupted_export_leaves_nothing_half_written(folders, moment, held_in_the_checker):
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
    code, _, err = _interrupt(process)
    assert code == 130, err
    assert err.strip().splitlines() == ["inspector: interrupted"]
    assert bad.snapshot(root) == before  # no staging folder, no .onnx.data, destination intact


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
