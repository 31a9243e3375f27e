"""The diff section of benchmarks/run.py: its report from given figures (nothing is measured here)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import diff_cost  # noqa: E402
import run  # noqa: E402
from _common import INSPECTOR, Stats, Timed  # noqa: E402


def _timed(*seconds):
    return Timed(Stats(seconds), Stats(seconds))


def _results(load: float, diff: float, drawing=None) -> dict:
    return {
        "model": "mobilenet_v3_large",
        "in_process": {"load": _timed(load), "diff": _timed(diff), "checks": _timed(0.5)},
        "processes": {
            "python: onnx.load both": _timed(0.3),
            "inspector diff --structure-only": _timed(0.9),
            "inspector diff": _timed(2.0),
        },
        "drawing": drawing
        if drawing is not None
        else {"render (full graph)": _timed(5.0), "render --depth 1": _timed(4.0)},
    }


def test_the_target_is_judged_on_cpu_time_of_the_diff_against_loading():
    text, headline = diff_cost.markdown(_results(0.020, 0.035))
    [(name, measured, ok)] = headline["targets"]
    assert (measured, ok) == ("1.75x CPU", True)
    assert "| the same loads + `diff_models(run=False)` | 35 ms" in text
    assert headline["figures"] == [
        ("render mobilenet_v3_large: full graph / --depth 1", "5.0 s / 4.0 s")
    ]
    _, missed = diff_cost.markdown(_results(0.020, 0.050))
    assert missed["targets"][0][1:] == ("2.50x CPU", False)


def test_a_machine_without_chromium_says_so_instead_of_a_figure():
    text, headline = diff_cost.markdown(_results(0.02, 0.03, drawing={"error": "no chromium"}))
    assert "Drawing not measured: no chromium" in text and headline["figures"] == []


def test_the_section_is_wired_in():
    assert "diff" in run.SECTIONS


def test_a_diff_runs_with_exit_1_counted_as_success():
    argv = [*INSPECTOR, "diff", "a.onnx", "b.onnx"]
    wrapped = diff_cost._different_is_success(argv)
    assert wrapped[:2] == [sys.executable, "-c"] and "['diff', 'a.onnx', 'b.onnx']" in wrapped[2]
    assert diff_cost._different_is_success(["python", "-c", "pass"]) == ["python", "-c", "pass"]
