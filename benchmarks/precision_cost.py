"""Precision: what `export --precision` costs over the float32 export, and what each agreement
figure of verify (cosine, SQNR, Pearson, --metric topk/cosine) costs per output.

Exports: `inspector.export_onnx(loaded, precision=P)` for fp32, fp16 and int8 (bf16 converts as
fp16 does, then retypes), run by run in turn after an untimed warm-up; fp16/int8 are the float32
export plus the conversion and its checks (ONNX checker by path, an onnxruntime session), int8
also 8 calibration runs. Figures: `compare_arrays` on a classifier batch (64 x 1000 logits) and
on a feature map (8 x 64 x 56 x 56, 1.6 M elements), against the same call's share spent in the
agreement figures (`similarity`, `task_metrics`) alone.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import markdown_table, time_calls
from export_cost import load, warm_up

PRECISIONS = ("fp32", "fp16", "int8")
SHAPES = {"logits 64x1000": (64, 1000), "feature map 8x64x56x56": (8, 64, 56, 56)}


def measure_exports(models: list[str], runs: int) -> dict:
    from inspector.export import export_onnx

    warm_up()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for subject in models:
            name, loaded = load(subject)
            calls = {
                p: (lambda p=p, m=loaded: export_onnx(m, Path(folder) / f"{p}.onnx", precision=p))
                for p in PRECISIONS
            }
            results[name] = time_calls(calls, runs)
    return results


def measure_figures(runs: int) -> dict:
    import numpy as np

    from inspector.onnx.compare import compare_arrays, similarity, task_metrics

    results = {}
    for label, shape in SHAPES.items():
        rng = np.random.default_rng(0)
        want = rng.standard_normal(shape).astype(np.float32)
        got = want + 1e-3 * rng.standard_normal(shape).astype(np.float32)
        wide, near = want.astype(np.float64), got.astype(np.float64)
        calls = {
            "compare_arrays (all figures)": lambda w=want, g=got: compare_arrays("y", w, g),
            "cosine + SQNR + Pearson": lambda w=wide, g=near: similarity(w, g),
            "--metric topk=5": lambda w=wide, g=near: task_metrics(w, g, ["topk=5"]),
            "--metric cosine": lambda w=wide, g=near: task_metrics(w, g, ["cosine"]),
        }
        results[label] = {name: _median_seconds(call, runs * 4) for name, call in calls.items()}
    return results


def _median_seconds(call, runs: int) -> float:
    import statistics

    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def markdown(exports: dict, figures: dict) -> tuple[str, dict]:
    rows = []
    for model, timed in exports.items():
        base = timed["fp32"].wall
        row = [f"`{model}`", base.seconds()]
        for precision in PRECISIONS[1:]:
            row.append(
                f"{timed[precision].wall.seconds()} ({timed[precision].wall.ratio(base):.2f}x)"
            )
        rows.append(row)
    columns = ["model", "fp32 export (wall)", "fp16 export", "int8 export"]
    figure_rows = []
    for label, times in figures.items():
        whole = times["compare_arrays (all figures)"]
        for name, seconds in times.items():
            share = "" if name.startswith("compare_arrays") else f" ({seconds / whole:.0%})"
            figure_rows.append([label, name, f"{seconds * 1e3:,.2f} ms{share}"])
    lines = [
        "## Precision",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        markdown_table(columns, rows),
        "",
        markdown_table(["output", "work", "median time (share of compare_arrays)"], figure_rows),
        "",
    ]
    return "\n".join(lines), {"targets": []}
