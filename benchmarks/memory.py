"""Peak memory (and wall time) of exporting a big model, each side a fresh child process.

Three children, interleaved run by run: Python that imports torch and builds the model (the floor
any export starts from), the bare exporter script (benchmarks/bare_export.py), and `inspector export`.
Peak memory is each child's own maximum resident set size (getrusage via os.wait4).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, ROOT, markdown_table, peak, time_children, timed

MODEL = "mobilenet_v3_large"


def model_bytes(name: str) -> dict:
    from inspector import models

    model = models.create_model(name)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return {
        "parameters": params,
        "buffers": buffers,
        "count": sum(p.numel() for p in model.parameters()),
    }


def commands(name: str, folder: Path) -> dict[str, list[str]]:
    build = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import torch, models; models.create_model({name!r})"
    return {
        "import torch + build the model": [sys.executable, "-c", build],
        "bare torch.onnx.export (script)": [
            sys.executable,
            str(ROOT / "benchmarks" / "bare_export.py"),
            name,
            str(folder / "bare.onnx"),
        ],
        "inspector export": [*INSPECTOR, "export", name, "-o", str(folder / "tool.onnx")],
    }


def measure(runs: int, name: str = MODEL) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        children = time_children(commands(name, Path(folder)), runs)
    return {
        "model": name,
        "size": model_bytes(name),
        "runs": {k: {"time": timed(v), "peak": peak(v)} for k, v in children.items()},
    }


def markdown(result: dict) -> tuple[str, dict]:
    size, runs = result["size"], result["runs"]
    params = size["parameters"]
    floor = runs["import torch + build the model"]
    bare = runs["bare torch.onnx.export (script)"]
    rows = []
    for label, r in runs.items():
        over = (r["peak"].median - floor["peak"].median) / 2**20
        rows.append(
            [
                label,
                r["peak"].mib(),
                f"{r['peak'].median / params:.1f}x",
                f"{over:+,.0f} MiB",
                r["time"].wall.seconds(),
                f"{r['time'].cpu.median:.2f} s",
            ]
        )
    tool = runs["inspector export"]
    text = "\n".join(
        [
            f"## Peak memory of exporting `{result['model']}`",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            f"The model itself: {size['count']:,} parameters = {params / 2**20:,.1f} MiB of float32 "
            f"weights (+ {size['buffers'] / 2**20:,.1f} MiB of BatchNorm buffers).",
            "",
            markdown_table(
                [
                    "child process",
                    "peak RSS",
                    "vs parameter bytes",
                    "over the floor",
                    "wall time",
                    "CPU time",
                ],
                rows,
            ),
            "",
            f"`inspector export` against the bare exporter script, as whole processes: peak memory "
            f"{tool['peak'].ratio(bare['peak']):.2f}x, wall time {tool['time'].wall.ratio(bare['time'].wall):.2f}x, "
            f"CPU time {tool['time'].cpu.ratio(bare['time'].cpu):.2f}x.",
        ]
    )
    figure = (
        f"{tool['peak'].median / 2**20:,.0f} MiB peak RSS for {params / 2**20:,.1f} MiB of "
        f"weights; {tool['peak'].ratio(bare['peak']):.2f}x the bare exporter's peak"
    )
    return text, {"figures": [(f"peak memory of exporting `{result['model']}`", figure)]}
