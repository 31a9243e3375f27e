"""The benchmark script's pieces (benchmarks/): statistics, child processes, the written report.

These run no benchmark: `make bench` measures; here only the plumbing that turns runs into
BENCHMARKS.md is checked, quickly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402
import run  # noqa: E402
import runtime  # noqa: E402
import startup  # noqa: E402
from _common import Stats, Timed  # noqa: E402


def test_stats_give_median_min_max_and_ratio():
    stats = Stats((0.3, 0.1, 0.2, 0.5, 0.4))
    assert (stats.median, stats.min, stats.max) == (0.3, 0.1, 0.5)
    assert stats.ratio(Stats((0.15,))) == pytest.approx(2.0)
    assert stats.ms() == "300 ms (min 100, max 500)"


def test_run_child_measures_a_process_and_its_own_peak_memory():
    small = _common.run_child([sys.executable, "-c", "pass"])
    # 200 MB allocated and touched: the child's own peak, not this test process's.
    big = _common.run_child(
        [sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"]
    )
    assert 0 < small.seconds < 30 and 0 < big.cpu_seconds <= big.seconds * 4
    assert big.peak_rss_bytes - small.peak_rss_bytes > 150 * 2**20


def test_run_child_refuses_to_time_a_failing_command():
    with pytest.raises(RuntimeError, match="exited 3: boom"):
        _common.run_child(
            [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
        )


def test_startup_section_reports_ratios_and_the_help_target():
    def both(*seconds):
        return Timed(Stats(seconds), Stats(tuple(s / 2 for s in seconds)))

    stats = {
        "python -c pass": both(0.02, 0.02, 0.03),
        'python -c "import torch"': both(2.0, 2.0, 2.0),
        "inspector --help": both(0.2, 0.2, 0.2),  # over the 150 ms target
        "inspector summary FILE.onnx": both(0.3, 0.3, 0.3),
        "onnx.load + op count (bare)": both(0.25, 0.25, 0.25),
        "inspector summary exercise_model": both(2.2, 2.2, 2.2),
        startup.PEER: both(0.4, 0.4, 0.4),
    }
    text, headline = startup.markdown(stats)
    assert "| `inspector --help` | 200 ms (min 200, max 200) | 10.0x | 0.10x | 100 ms" in text
    assert "**missed** (200 ms)" in text
    help_target, summary_target = headline["targets"]
    assert help_target == ("`inspector --help` under 150 ms", "200 ms", False)
    assert summary_target[2] is True and "(0.75x)" in summary_target[1]  # 0.3 s against 0.4 s
    # without the peer installed, the bare parse is the yardstick: 0.3 s against 0.25 s misses it
    del stats[startup.PEER]
    _, headline = startup.markdown(stats)
    assert (
        headline["targets"][1][2] is False and "onnx.load + op count" in headline["targets"][1][0]
    )


def test_runtime_section_names_models_slower_in_onnxruntime_at_batch_1():
    def result(batch, torch_ms, ort_ms):
        return {
            "batch_size": batch,
            "threads": 2,
            "torch_ms": torch_ms,
            "onnxruntime_ms": ort_ms,
            "onnxruntime_optimized_ms": ort_ms,
            "speedup": torch_ms / ort_ms,
            "speedup_optimized": torch_ms / ort_ms,
            "p90_ms": {"torch": torch_ms, "onnxruntime": ort_ms, "onnxruntime_optimized": ort_ms},
            "gflops": {"torch": 1.0, "onnxruntime": 2.0},
        }

    reports = {
        "fast": {"runs": 20, "warmup": 3, "results": [result(1, 2.0, 1.0), result(8, 8, 16)]},
        "slow": {"runs": 20, "warmup": 3, "results": [result(1, 1.0, 4.0)]},
    }
    text, headline = runtime.markdown(reports)
    assert headline["slower_at_batch_1"] == ["`slow` (0.25x)"]
    assert (
        "| `fast` | 1 | 2.000 (2.000) | 1.000 (1.000) | 1.000 (1.000) | 2.00x | 2.00x | 1.0 / 2.0 |"
        in text
    )
    assert "**missed**" in text


def test_quick_startup_section_writes_a_report(tmp_path, monkeypatch):
    """The smallest real piece: the start-up section, one run, with a stand-in for each command."""
    fast = [sys.executable, "-c", "pass"]
    monkeypatch.setattr(startup, "make_onnx_file", lambda folder: folder / "x.onnx")
    monkeypatch.setattr(startup, "commands", lambda onnx: dict.fromkeys(startup_names(), fast))
    output = tmp_path / "BENCHMARKS.md"
    assert run.main(["--quick", "--only", "startup", "--runs", "1", "--output", str(output)]) == 0
    text = output.read_text()
    assert text.startswith("# Benchmarks")
    assert "quick mode" in text and "## Start-up" in text and "- Versions: python" in text
    assert "Changes and their measured effect" in text
    assert "| `inspector --help` under 150 ms |" in text.split("## Start-up")[0]  # the summary
    assert "Not measured" not in text


def startup_names():
    return [
        "python -c pass",
        'python -c "import torch"',
        "inspector --help",
        "inspector summary FILE.onnx",
        "onnx.load + op count (bare)",
        "inspector summary exercise_model",
    ]


def _child_runs(seconds: float, peak_mib: float) -> list:
    return [_common.ChildRun(seconds, seconds, int(peak_mib * 2**20)) for _ in range(3)]


def test_large_model_section_judges_export_and_verify_against_their_baselines():
    import large_models

    result = {
        "exports": {
            "bare": _child_runs(10.0, 800),
            "inspector export": _child_runs(12.0, 1000),  # 1.2x wall: over the 1.15x target
        },
        "memory": {
            "floor": _child_runs(1.0, 700),
            "onnxruntime": _child_runs(1.0, 50),
            "session": _child_runs(1.0, 450),
            "verify cached": _child_runs(5.0, 1100),
            "verify fresh": _child_runs(9.0, 1200),
        },
        "weights": 400 * 2**20,
    }
    text, headline = large_models.markdown(result)
    assert (
        "wall time 1.20x (target 1.15x: **missed**), peak memory 1.25x (target 1.3x: met)" in text
    )
    assert "| budget: model process + session over its floor + one batch | 1,100 MiB |" in text
    assert [ok for _, _, ok in headline["targets"]] == [False, True]
    assert "1,100 MiB cached, 1,200 MiB exporting" in headline["figures"][0][1]


def test_big_model_exports_are_judged_against_the_bare_script_of_the_same_run():
    import big_models

    vit, wide = big_models.EXPORTS
    exports = {
        vit: {"bare": _child_runs(10.0, 800), "inspector": _child_runs(13.0, 1000)},
        wide: {"bare": _child_runs(40.0, 2700), "inspector": _child_runs(42.0, 3300)},
    }
    text, targets = big_models.markdown_exports(exports)
    assert f"{vit}: peak 1.25x the bare script's (target 1.2x: **missed**), wall 1.30x." in text
    assert f"{wide}: peak 1.22x the bare script's (target 1.2x: **missed**), wall 1.05x " in text
    assert [ok for _, _, ok in targets] == [False, False, True]  # no wall target for the ViT
    assert big_models.markdown_exports({}) == ("", [])


def test_check_all_jobs_section_reports_the_wall_time_ratio():
    import checkall_jobs

    runs = {
        "--jobs 1": Timed(Stats((20.0, 22.0)), Stats((20.0,))),
        "--jobs 2": Timed(Stats((14.0, 14.0)), Stats((26.0,))),
    }
    text, headline = checkall_jobs.markdown({"pattern": None, "runs": runs})
    assert "--jobs 2 takes 0.67x the wall time of --jobs 1 (target 0.75x: met)" in text
    assert headline["targets"] == [
        ("`check-all --jobs 2` within 0.75x the wall time of --jobs 1", "0.67x", True)
    ]
