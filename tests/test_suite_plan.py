"""How `make test` runs the suite: one pytest-xdist worker per core, then, alone, the tests that
must not share the cores (they send signals once work has begun, drive a browser, or read memory)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pytest_runs_of(target: str) -> list[list[str]]:
    """The pytest command lines `make TARGET` would run (make -n prints them without running)."""
    done = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    runs = []
    for line in done.stdout.splitlines():
        if "-m pytest" in line:
            words = shlex.split(line.split("||")[0])
            runs.append(words[words.index("pytest") + 1 :])
    return runs


@pytest.mark.parametrize(
    "target, parallel_marks, serial_marks",
    [
        ("test", "not serial and not slow", "serial and not slow"),
        ("test-slow", "slow and not serial", "slow and serial"),
    ],
)
def test_make_test_runs_the_serial_tests_alone_after_the_others(
    target, parallel_marks, serial_marks
):
    parallel, serial = _pytest_runs_of(target)
    assert "-n" in parallel and parallel[parallel.index("-m") + 1] == parallel_marks
    assert "-n" not in serial and serial[serial.index("-m") + 1] == serial_marks


def _collected(marker: str, *files: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-m", marker, *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {line.split("::")[1] for line in done.stdout.splitlines() if "::" in line}


@pytest.mark.slow
def test_signals_browsers_and_the_soak_are_marked_serial():
    files = ["tests/test_view.py", "tests/test_render.py", "tests/test_soak.py"]
    serial = _collected("serial", *files)
    assert "test_view_command_serves_until_ctrl_c" in serial  # sends SIGINT
    assert "test_svg_names_the_layers_with_netron_styles" in serial  # a browser test
    assert "test_verify_api_again_and_again" in serial  # the soak, by its file
    assert "test_png_size_reads_the_header" not in serial  # no browser, no signal
    assert "test_view_of_a_model_exports_it_and_opens_the_browser" not in serial  # a fake browser
