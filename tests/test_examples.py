"""The lecture's scripts in examples/ print exactly what their slides print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "examples"

# The slides' scripts, in the order of the lecture.
LECTURE_SCRIPTS = [
    "conv",
    "exercise1",
    "linear",
    "exercise2",
    "batchnorm",
    "relu",
    "sample",
    "make_model",
    "exercise3",
    "view",
]


def run_example(name: str, cwd: Path) -> subprocess.CompletedProcess:
    # As a user runs them after `make install`: from a foreign folder, with no PYTHONPATH that
    # would find this checkout's models/ for exercise3's `from models import ExerciseModel`.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# Deliberately not tests/_golden.assert_golden: its update mode rewrites a golden file from the
# output, and these files must stay what the slides show (see tests/golden/examples/README.md).
@pytest.mark.parametrize("name", LECTURE_SCRIPTS)
def test_example_prints_what_its_slide_prints(name, tmp_path):
    expected = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    result = run_example(name, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


def test_every_lecture_script_has_a_golden_file():
    goldens = {path.stem for path in GOLDEN.glob("*.txt")}
    assert goldens == set(LECTURE_SCRIPTS)
    for name in LECTURE_SCRIPTS:
        assert (ROOT / "examples" / f"{name}.py").is_file(), name
