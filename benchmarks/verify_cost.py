"""Verify: `inspector verify MODEL` against its essential work, in one process.

The essential work is what any proof that onnxruntime computes what PyTorch computes must do: one
bare export (benchmarks' bare_export: torch.onnx.export with inspector's options), one onnxruntime
session, and per input one PyTorch forward and one onnxruntime run. The inputs are verify's
defaults: 3 seeds at batch sizes 1 and 3, 6 inputs. `inspector verify` is `inspector.verify(loaded,
use_cache=False)`: it exports afresh (the export cache would skip the export and make the ratio
meaningless; inspector's reused torchlib registry is cleared first too, as in a fresh process),
checks it in memory as it writes it, compares every output element-wise and builds its report.
After one untimed export by each side (the export section's warm-up), they alternate run by run.
CPU time counts the child processes too (inspector checks a file it did not write in a child).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import markdown_table, time_calls, verdict
from export_cost import bare_export, forget_registry, load, warm_up

VERIFY_TARGET = 1.30
SEEDS, BATCH_SIZES = 3, (1, 3)


def essential_work(loaded, path: Path) -> None:
    import onnxruntime
    import torch

    bare_export(loaded, path, optimize=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [arg.name for arg in session.get_inputs()]
    with torch.inference_mode():
        for batch_size in BATCH_SIZES:
            for seed in range(SEEDS):
                inputs = loaded.example_inputs(batch_size=batch_size, seed=seed)
                inputs.call(loaded.module)
                arrays = [x.numpy() for x in inputs.tensors()]
                session.run(None, dict(zip(names, arrays, strict=True)))


def measure(models: list[str], runs: int) -> dict:
    from inspector.verification import verify

    warm_up()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for index, subject in enumerate(models):
            name, loaded = load(subject)
            path = Path(folder) / f"model_{index}.onnx"

            def tool(m=loaded):
                forget_registry()  # as in a fresh `inspector verify` process
                report = verify(m, use_cache=False, seeds=SEEDS, batch_sizes=list(BATCH_SIZES))
                if not report:
                    raise RuntimeError(f"verify failed for {m.spec}: a benchmark of a failure")

            calls = {"inspector": tool, "essential": lambda m=loaded, p=path: essential_work(m, p)}
            results[name] = time_calls(calls, runs)
    return results


def markdown(results: dict) -> tuple[str, dict]:
    rows, ratios = [], {}
    for model, t in results.items():
        ratios[model] = t["inspector"].cpu.ratio(t["essential"].cpu)
        rows.append(
            [
                f"`{model}`",
                t["essential"].wall.seconds(),
                t["inspector"].wall.seconds(),
                f"{t['inspector'].wall.ratio(t['essential'].wall):.2f}x",
                f"{t['essential'].cpu.median:.2f} s / {t['inspector'].cpu.median:.2f} s",
                f"**{ratios[model]:.2f}x**",
            ]
        )
    worst = max(ratios, key=ratios.get) if ratios else None
    columns = [
        "model",
        "essential work (wall)",
        "inspector verify (wall)",
        "wall ratio",
        "CPU essential / inspector",
        "CPU ratio",
    ]
    lines = [
        "## Verify",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        markdown_table(columns, rows),
        "",
    ]
    if worst:
        lines.append(
            f"Target within {VERIFY_TARGET:.1f}x of the essential work (judged on CPU time): "
            f"{verdict(ratios[worst] <= VERIFY_TARGET)} (worst: {worst}, {ratios[worst]:.2f}x)."
        )
    targets = []
    if worst:
        targets.append(
            (
                f"verify within {VERIFY_TARGET:.1f}x of its essential work",
                f"worst {ratios[worst]:.2f}x CPU ({worst})",
                ratios[worst] <= VERIFY_TARGET,
            )
        )
    return "\n".join(lines), {"targets": targets}
