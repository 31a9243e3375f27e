"""Soak: verify every lecture model again and again; nothing piles up.

In one process (the Python API, then the CLI's main()) and as separate commands, every round must
pass, leave $TMPDIR empty, and -- in one process -- not grow the resident memory from round to
round. Memory is read after a garbage collection and malloc_trim (so freed heap goes back to the
system), and compared between round 2 (after the warm-up round has loaded the libraries and their
caches) and the last round. The tolerance is wide enough for torch's own growth (see below) and
narrow enough that leaking the exercise model, or its onnxruntime session, once per round fails;
a test below checks that the measurement catches such a leak.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import subprocess
import sys
import tempfile

import _hostile_files as bad
import pytest

from inspector import models
from inspector.cli import main
from inspector.loading import load_model
from inspector.verification import verify

pytestmark = pytest.mark.slow

# Every model of models/lecture.py, with a small input so a round takes seconds, not minutes.
# (The MobileNetV3s are exported and verified in test_mobilenetv3.py.)
SMALL_SHAPES = {
    "batchnorm": (2, 256, 8, 8),
    "conv": (2, 3, 16, 16),
    "conv_bn_relu": (1, 3, 16, 16),
    "exercise_model": (2, 3, 128, 128),  # the Linear layer fixes the 128x128 image
    "linear": (2, 1280),
    "my_model": (2, 3),
    "relu": (1, 1, 3, 3),
}
ROUNDS = 3  # round 1 warms up (imports, caches); rounds 2 and 3 are compared
# torch.fx keeps the source of every GraphModule it generates (torch.fx.graph_module._loader,
# ~19 modules and 19 KB of source per export of the exercise model), so each round that exports
# grows by about 0.6 MiB (measured over 10 rounds) whatever we do; under pytest, its log capture
# adds to that (~2 MiB per round). A leaked model or onnxruntime session of the exercise model
# (17 MB of weights) per round is far above the tolerance.
GROWTH_TOLERANCE = 16 * 2**20  # bytes between round 2 and the last round


def test_every_lecture_model_is_soaked():
    lecture = {
        n
        for n in models.list_models()
        if models.get_entry(n).builder.__module__ == "inspector.models.lecture"
    }
    assert lecture == set(SMALL_SHAPES)


def _resident_bytes() -> int:
    gc.collect()
    # Not glibc: the tolerance has to absorb the heap's slack.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def private_tmpdir(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "cache"))
    return folder


def _soak(one_round) -> list[int]:
    sizes = []
    for _ in range(ROUNDS):
        one_round()
        sizes.append(_resident_bytes())
    return sizes


def _assert_no_growth(sizes: list[int]) -> None:
    growth = sizes[-1] - sizes[1]
    mib = [round(size / 2**20, 1) for size in sizes]
    assert growth < GROWTH_TOLERANCE, f"resident memory by round (MiB): {mib}"


def test_the_memory_check_catches_a_leak_the_size_of_the_exercise_model():
    import torch

    leaked = []
    sizes = _soak(lambda: leaked.append(torch.randn(4_300_000)))  # 17 MB, like its weights
    with pytest.raises(AssertionError, match="resident memory by round"):
        _assert_no_growth(sizes)
    leaked.clear()
    _assert_no_growth(_soak(lambda: torch.randn(4_300_000)))  # made and freed each round


def test_verify_api_again_and_again(private_tmpdir):
    def one_round():
        for name, shape in SMALL_SHAPES.items():
            report = verify(load_model(name, input_shapes=[shape]), seeds=1)
            assert report, report
            del report

    sizes = _soak(one_round)
    assert list(private_tmpdir.iterdir()) == []
    _assert_no_growth(sizes)


def test_verify_command_again_and_again(private_tmpdir, tmp_path, capsys):
    reports = tmp_path / "reports"
    reports.mkdir()

    def one_round():
        for name, shape in SMALL_SHAPES.items():
            # Through the export cache: round 1 exports, later rounds reuse the cached files
            # (the API test above exports every time).
            argv = [
                "verify",
                name,
                "--input-shape",
                ",".join(map(str, shape)),
                "--seeds",
                "1",
                "--report",
                reports / f"{name}.json",
            ]
            code = main([str(a) for a in argv])
            out, err = capsys.readouterr()
            assert code == 0, err
            assert out.startswith("PASSED"), out

    sizes = _soak(one_round)
    assert list(private_tmpdir.iterdir()) == []
    assert sorted(p.name for p in reports.iterdir()) == sorted(f"{n}.json" for n in SMALL_SHAPES)
    _assert_no_growth(sizes)


def test_separate_commands_leave_nothing_behind(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    # Each in a fresh process: what a process leaves in $TMPDIR at exit (onnxruntime's session
    # file, torch's inductor folder) shows here; repetition is the in-process tests' job.
    commands = [
        ["verify", "relu", "--no-cache"],
        ["check-all", "--pattern", "my_model", "--no-cache"],
    ]
    for argv in commands:
        done = subprocess.run(
            [sys.executable, "-m", "inspector", *argv],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=bad.cli_env(TMPDIR=folder, INSPECTOR_CACHE_DIR=tmp_path / "c"),
        )
        assert done.returncode == 0, done.stderr
        assert list(folder.iterdir()) == [], argv
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]  # nothing in the cwd
