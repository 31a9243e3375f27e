"""Verify with module outputs: what proving an export costs when its outputs cannot tell.

A model whose classifier is zero-initialized outputs exactly 0 whatever the export did, so
`inspector verify` also compares the output of every module (one hooked PyTorch forward, one
onnxruntime run with every module's value as an extra output). Measured per model, in one process,
on a file exported beforehand (the export is the same for both and would hide the difference):

- plain verify: `inspector.verify(loaded, onnx=path)` on the model with seeded BatchNorm
  statistics, whose outputs discriminate (3 seeds at batch sizes 1 and 3);
- verify with module outputs: the same model with its last Linear layer zeroed (weight and bias),
  exported the same way: the same runs, then every module's output compared;
- the essential work of each: an onnxruntime session and, per input, one PyTorch forward and one
  onnxruntime run; for the second also one forward that copies every module's output and one
  onnxruntime run on a session that exposes them.

Both inspector calls check the file in a child process first (the ONNX checker), which the
essential work does not. The calls alternate run by run; CPU time counts the child processes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import markdown_table, time_calls, verdict

MODULES_TARGET = 1.5  # verify with module outputs against a plain verify (CPU)
SEEDS, BATCH_SIZES = 3, (1, 3)


def prepare(name: str, folder: Path) -> dict:
    """The model twice (BatchNorm statistics; the second with its head zeroed), each exported."""
    import torch

    from inspector.checkall import give_batchnorm_statistics
    from inspector.export import export_onnx
    from inspector.loading import load_model

    subjects = {}
    for kind in ("plain", "modules"):
        loaded = load_model(name)
        give_batchnorm_statistics(loaded.module, seed=3)
        if kind == "modules":
            head = [m for m in loaded.module.modules() if isinstance(m, torch.nn.Linear)][-1]
            with torch.no_grad():
                head.weight.zero_()
                head.bias.zero_()
        path = export_onnx(loaded, folder / f"{name}_{kind}.onnx").path
        subjects[kind] = loaded, path
    return subjects


def essential_work(loaded, path: Path, modules: bool) -> None:
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [arg.name for arg in session.get_inputs()]
    with torch.inference_mode():
        for batch_size in BATCH_SIZES:
            for seed in range(SEEDS):
                inputs = loaded.example_inputs(batch_size=batch_size, seed=seed)
                inputs.call(loaded.module)
                arrays = [x.numpy() for x in inputs.tensors()]
                session.run(None, dict(zip(names, arrays, strict=True)))
    if modules:
        _module_outputs(loaded, path, names)


def _module_outputs(loaded, path: Path, names: list[str]) -> None:
    """One forward copying every module's output; one run exposing every module's ONNX value."""
    import onnx
    import onnxruntime
    import torch

    from inspector.onnx.module_values import module_values

    copies = []
    handles = [
        m.register_forward_hook(lambda _m, _a, out: copies.append(out.detach().clone()))
        for m in loaded.module.modules()
    ]
    inputs = loaded.example_inputs(batch_size=BATCH_SIZES[0], seed=0)
    try:
        with torch.inference_mode():
            inputs.call(loaded.module)
    finally:
        for handle in handles:
            handle.remove()
    model = onnx.load(str(path))
    values = {v for entry in module_values(model.graph).values() for v in entry.outputs}
    present = {output.name for output in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=v) for v in sorted(values - present))
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    arrays = [x.numpy() for x in inputs.tensors()]
    session.run(None, dict(zip(names, arrays, strict=True)))


def measure(models: list[str], runs: int) -> dict:
    from inspector.verification import verify

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in models:
            subjects = prepare(name, Path(folder))

            def tool(kind, subjects=subjects, name=name):
                loaded, path = subjects[kind]
                report = verify(loaded, onnx=path, seeds=SEEDS, batch_sizes=list(BATCH_SIZES))
                compared = report.intermediates is not None and report.intermediates.decisive
                if not report or compared != (kind == "modules"):
                    raise RuntimeError(f"{name} {kind}: not the verification to measure: {report}")

            calls = {
                "essential": lambda s=subjects: essential_work(*s["plain"], modules=False),
                "plain": lambda: tool("plain"),
                "essential modules": lambda s=subjects: essential_work(*s["modules"], modules=True),
                "modules": lambda: tool("modules"),
            }
            tool("modules")  # warm-up, untimed: the first onnx.load and hooks of a process
            results[name] = time_calls(calls, runs)
    return results


def markdown(results: dict) -> tuple[str, dict]:
    rows, ratios = [], {}
    for model, t in results.items():
        ratios[model] = t["modules"].cpu.ratio(t["plain"].cpu)
        rows.append(
            [
                f"`{model}`",
                f"{t['essential'].cpu.median:.2f} s / {t['plain'].cpu.median:.2f} s "
                f"({t['plain'].cpu.ratio(t['essential'].cpu):.2f}x)",
                f"{t['essential modules'].cpu.median:.2f} s / {t['modules'].cpu.median:.2f} s "
                f"({t['modules'].cpu.ratio(t['essential modules'].cpu):.2f}x)",
                t["plain"].wall.seconds(),
                t["modules"].wall.seconds(),
                f"**{ratios[model]:.2f}x**",
            ]
        )
    columns = [
        "model",
        "CPU essential / plain verify",
        "CPU essential / verify with module outputs",
        "plain verify (wall)",
        "verify with module outputs (wall)",
        "CPU with modules / plain",
    ]
    worst = max(ratios, key=ratios.get) if ratios else None
    lines = [
        "## Verify with module outputs",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        markdown_table(columns, rows),
        "",
    ]
    targets = []
    if worst:
        met = ratios[worst] <= MODULES_TARGET
        lines.append(
            f"Target: a verify that compares module outputs within {MODULES_TARGET:.1f}x of a "
            f"plain verify (CPU time): {verdict(met)} (worst: {worst}, {ratios[worst]:.2f}x)."
        )
        targets.append(
            (
                f"verify with module outputs within {MODULES_TARGET:.1f}x of a plain verify",
                f"worst {ratios[worst]:.2f}x CPU ({worst})",
                met,
            )
        )
    return "\n".join(lines), {"targets": targets}
