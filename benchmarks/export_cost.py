"""Export: `inspector export` against the bare `torch.onnx.export` call with the same options.

Measured in one process (in-process is the fair comparison here: both sides then share the same
imported torch and the exporter's warm caches, so the ratio is the toolkit's own cost). Each model
is exported once by each side before timing, then the two sides alternate run by run.

`inspector export` (authored graph, the default) is compared with `torch.onnx.export(dynamo=True,
optimize=False)`, and `--graph optimized` with `optimize=True`; both with opset 18, a dynamic batch
axis traced at batch >= 2, and writing the file. The bare call runs under the same quiet() that
hides the exporter's log lines, so printing is not counted on one side only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import markdown_table, time_calls, verdict

EXPORT_TARGET = 1.10
GRAPH_OPTIMIZE = {"authored": False, "optimized": True}


def bare_export(loaded, path: Path, optimize: bool) -> None:
    """What a user writes without inspector: torch.onnx.export with the options inspector uses."""
    import torch

    from inspector.export_noise import quiet

    batch = max(2, loaded.input_shapes[0][0])
    inputs = loaded.example_inputs(batch_size=batch)
    dim = torch.export.Dim("batch")
    with quiet():
        torch.onnx.export(
            loaded.module,
            inputs,
            str(path),
            dynamo=True,
            opset_version=18,
            optimize=optimize,
            dynamic_shapes=tuple({0: dim} if x.dim() else None for x in inputs),
        )


def measure(models: list[str], runs: int, graphs=("authored",)) -> dict:
    """{model: {graph: {"inspector": Stats, "bare": Stats}}}."""
    from inspector.export import export_onnx
    from inspector.loading import load_model

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for name in models:
            loaded = load_model(name)
            results[name] = {}
            for graph in graphs:
                calls = {
                    "inspector": lambda g=graph, m=loaded: export_onnx(
                        m, out / "tool.onnx", graph=g
                    ),
                    "bare": lambda g=graph, m=loaded: bare_export(
                        m, out / "bare.onnx", GRAPH_OPTIMIZE[g]
                    ),
                }
                for call in calls.values():  # the first export in a process builds caches
                    call()
                results[name][graph] = time_calls(calls, runs)
    return results


def markdown(results: dict) -> tuple[str, dict]:
    rows, ratios = [], {}
    for model, graphs in results.items():
        for graph, t in graphs.items():
            cpu_ratio = t["inspector"].cpu.ratio(t["bare"].cpu)
            ratios[f"{model} ({graph})"] = cpu_ratio
            rows.append(
                [
                    f"`{model}`",
                    graph,
                    t["bare"].wall.seconds(),
                    t["inspector"].wall.seconds(),
                    f"{t['inspector'].wall.ratio(t['bare'].wall):.2f}x",
                    f"{t['bare'].cpu.median:.2f} s / {t['inspector'].cpu.median:.2f} s",
                    f"**{cpu_ratio:.2f}x**",
                ]
            )
    worst = max(ratios, key=ratios.get) if ratios else None
    columns = [
        "model",
        "graph",
        "bare torch.onnx.export (wall)",
        "inspector export (wall)",
        "wall ratio",
        "CPU bare / inspector",
        "CPU ratio",
    ]
    lines = [
        "## Export",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        markdown_table(columns, rows),
        "",
    ]
    if worst:
        lines.append(
            f"Target within {EXPORT_TARGET:.1f}x of the bare exporter (judged on CPU time, which "
            f"other processes on a shared machine disturb far less than wall time): "
            f"{verdict(ratios[worst] <= EXPORT_TARGET)} (worst: {worst}, {ratios[worst]:.2f}x)."
        )
    return "\n".join(lines), {"export_cpu_ratios": ratios}
