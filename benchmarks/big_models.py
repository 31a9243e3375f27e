"""Models bigger than memory allows twice: a checkpoint loaded without a second copy, and a summary
of a model too large to allocate, each a fresh child process.

Checkpoint: `inspector summary` of a 1.07 GB model (benchmarks/large_model.py:sixteen_linears)
with and without `--checkpoint` of its state_dict (a .pt file): the file is mapped
(torch.load(mmap=True)) and its tensors assigned to the model (load_state_dict(assign=True)), so
the weights the model was built with are freed instead of copied into. Target: within 1.3x the
summary without a checkpoint (it was 1.8x with a read-and-copy load).

Meta device: `inspector summary` of Llama-2-7B's shape from its transformers config (6.7B
parameters, 27 GB of float32), which builds on the meta device because the weights cannot fit.
Target: under 2 GB of peak memory.

Exports: `inspector export` against the bare exporter script with the checker
(benchmarks/bare_export.py --check: `torch.onnx.export(dynamo=True)`, then
`onnx.checker.check_model(path, full_check=True)`), run after run, of ViT-B/32's shape from a
transformers config (88M parameters: Linear layers on tokens, which the exporter writes as
Transpose(weight) -> MatMul) and of ten 7,776-wide Linear layers (2.25 GiB, past protobuf's 2 GiB:
the weights go to a .onnx.data file). Targets: peak memory within 1.2x the bare script's for both,
wall time within 1.1x for the 2.25 GiB model.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, ROOT, markdown_table, peak, time_children, timed, verdict

MODEL = "benchmarks/large_model.py:sixteen_linears"
LLAMA = "benchmarks/large_model.py:llama_7b"
CHECKPOINT_TARGET, META_TARGET_BYTES = 1.3, 2 * 10**9
EXPORT_PEAK_TARGET, EXPORT_WALL_TARGET = 1.2, 1.1
# label -> (model, input shape, whether the wall-time target applies)
EXPORTS = {
    "ViT-B/32 shape (88M parameters)": ("benchmarks/large_model.py:vit_b_32", "2,3,224,224", False),
    "ten 7,776-wide Linears (2.25 GiB)": (
        "benchmarks/large_model.py:ten_wide_linears",
        "2,7776",
        True,
    ),
}

_SAVE = (
    "import sys, torch; sys.path.insert(0, {here!r}); from large_model import sixteen_linears; "
    "torch.manual_seed(1); torch.save(sixteen_linears().state_dict(), sys.argv[1])"
)


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "sixteen_linears.pt"
        save = [sys.executable, "-c", _SAVE.format(here=str(ROOT / "benchmarks")), str(checkpoint)]
        time_children({"save the checkpoint": save}, 1)
        summary = [*INSPECTOR, "summary", MODEL, "--input-shape", "2,4096"]
        loads = time_children(
            {
                "inspector summary": summary,
                "inspector summary --checkpoint (1.07 GB)": [
                    *summary,
                    "--checkpoint",
                    str(checkpoint),
                ],
            },
            runs,
        )
    llama = [*INSPECTOR, "summary", LLAMA, "--input", "input_ids=1x16:int64:0..32000"]
    meta = time_children({"inspector summary of a 7B Llama (meta device)": llama}, runs)
    return {"loads": loads, "meta": meta, "exports": measure_exports(runs)}


def measure_exports(runs: int, labels=tuple(EXPORTS)) -> dict:
    """label -> {"bare": runs, "inspector": runs}, the two interleaved run by run."""
    found = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for label in labels:
            model, shape, _ = EXPORTS[label]
            bare = [sys.executable, str(ROOT / "benchmarks" / "bare_export.py"), model]
            tool = [*INSPECTOR, "export", model, "--input-shape", shape]
            found[label] = time_children(
                {
                    "bare": [*bare, str(out / "bare.onnx"), "--check"],
                    "inspector": [*tool, "-o", str(out / "tool.onnx")],
                },
                runs,
            )
    return found


def markdown(result: dict) -> tuple[str, dict]:
    loads = {name: (timed(runs), peak(runs)) for name, runs in result["loads"].items()}
    (_, plain), (_, loaded) = loads.values()
    ratio = loaded.ratio(plain)
    meta = {name: (timed(runs), peak(runs)) for name, runs in result["meta"].items()}
    (_, meta_peak), *_ = meta.values()
    rows = [
        [label, t.wall.seconds(), f"{t.cpu.median:.2f} s", p.mib()]
        for label, (t, p) in {**loads, **meta}.items()
    ]
    meta_ok = meta_peak.median <= META_TARGET_BYTES
    export_text, export_targets = markdown_exports(result.get("exports", {}))
    text = "\n".join(
        [
            "## Big models: checkpoints without a second copy, summaries on the meta device",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            markdown_table(["child process", "wall time", "CPU time", "peak RSS"], rows),
            "",
            f"`--checkpoint` peaks at {ratio:.2f}x the summary without it (target "
            f"{CHECKPOINT_TARGET}x: {verdict(ratio <= CHECKPOINT_TARGET)}); the 7B summary at "
            f"{meta_peak.mib()} (target 2 GB: {verdict(meta_ok)}).",
            "",
            export_text,
        ]
    )
    return text, {
        "targets": [
            (
                f"summary --checkpoint within {CHECKPOINT_TARGET}x",
                f"{ratio:.2f}x",
                ratio <= CHECKPOINT_TARGET,
            ),
            ("7B Llama summary under 2 GB", meta_peak.mib(), meta_ok),
            *export_targets,
        ]
    }


def markdown_exports(exports: dict) -> tuple[str, list]:
    """The export table, a line of ratios per model, and their targets."""
    rows, lines, targets = [], [], []
    for label, runs in exports.items():
        (bare_time, bare_peak), (tool_time, tool_peak) = (
            (timed(r), peak(r)) for r in (runs["bare"], runs["inspector"])
        )
        for who, t, p in (
            ("bare script", bare_time, bare_peak),
            ("inspector", tool_time, tool_peak),
        ):
            rows.append([f"{label}: {who}", t.wall.seconds(), f"{t.cpu.median:.2f} s", p.mib()])
        memory, wall = tool_peak.ratio(bare_peak), tool_time.wall.ratio(bare_time.wall)
        memory_ok = memory <= EXPORT_PEAK_TARGET
        targets.append(
            (
                f"{label} export within {EXPORT_PEAK_TARGET}x the bare peak",
                f"{memory:.2f}x",
                memory_ok,
            )
        )
        line = (
            f"{label}: peak {memory:.2f}x the bare script's (target {EXPORT_PEAK_TARGET}x: "
            f"{verdict(memory_ok)}), wall {wall:.2f}x"
        )
        if EXPORTS[label][2]:
            wall_ok = wall <= EXPORT_WALL_TARGET
            targets.append(
                (
                    f"{label} export within {EXPORT_WALL_TARGET}x the bare wall time",
                    f"{wall:.2f}x",
                    wall_ok,
                )
            )
            line += f" (target {EXPORT_WALL_TARGET}x: {verdict(wall_ok)})"
        lines.append(f"- {line}.")
    if not rows:
        return "", []
    table = markdown_table(["export", "wall time", "CPU time", "peak RSS"], rows)
    return "\n".join([table, "", *lines]), targets
