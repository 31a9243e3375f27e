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
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, ROOT, markdown_table, peak, time_children, timed, verdict

MODEL = "benchmarks/large_model.py:sixteen_linears"
LLAMA = "benchmarks/large_model.py:llama_7b"
CHECKPOINT_TARGET, META_TARGET_BYTES = 1.3, 2 * 10**9

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
    return {"loads": loads, "meta": meta}


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
        ]
    }
