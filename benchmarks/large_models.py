"""Large models: exporting and verifying a 100M-parameter model, each side a fresh child process.

The model is benchmarks/large_model.py (six 4096x4096 Linear layers, 400 MB of float32 weights).
The children run interleaved, run by run; a child's peak memory is its maximum resident set size
(Linux reports the largest of the process and the children it waited for: inspector checks a file
it did not write in a child process).

Export: the bare exporter script with the checker (`torch.onnx.export(dynamo=True)`, then
`onnx.checker.check_model(path, full_check=True)`: benchmarks/bare_export.py --check) against
`inspector export`, which writes one .onnx file (the weights inline below 1.8 GB) with inferred
shapes, metadata and a checked dynamic batch. Targets: at most 1.15x the bare wall time and 1.3x
its peak memory.

Verify: `inspector verify` of the same model, its export taken from a warm export cache (checked
once in a child process, as in a new CI run) and made afresh (`--no-cache`), against what it
must hold at once: the PyTorch model in a process that has imported the libraries verify uses
(torch, onnx, onnxscript, onnxruntime, inspector), one
onnxruntime session on the exported file (its own interpreter's floor taken off), and one batch
of inputs and outputs (verify's largest: 3 x 4096 float32 in, the same out: 96 KiB).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, ROOT, markdown_table, peak, time_children, timed, verdict

MODEL = "benchmarks/large_model.py:six_linears"
INPUT = ["--input-shape", "2,4096"]
WALL_TARGET, PEAK_TARGET = 1.15, 1.30
BATCH_BYTES = 2 * 3 * 4096 * 4

# What verify imports anyway (torch, onnx, onnxscript, onnxruntime), and the model built.
_FLOOR = (
    "import sys; sys.path.insert(0, {root!r}); import onnx, onnxscript, onnxruntime; "
    "from inspector.loading import load_model; load_model({model!r}, input_shapes=[(2, 4096)])"
)
_SESSION = (
    "import sys, numpy, onnxruntime; s = onnxruntime.InferenceSession(sys.argv[1], "
    "providers=['CPUExecutionProvider']); "
    "s.run(None, {s.get_inputs()[0].name: numpy.ones((3, 4096), numpy.float32)})"
)


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        exports = time_children(
            {
                "bare torch.onnx.export + check_model(full_check=True)": [
                    sys.executable,
                    str(ROOT / "benchmarks" / "bare_export.py"),
                    MODEL,
                    str(out / "bare.onnx"),
                    "--check",
                ],
                "inspector export": [
                    *INSPECTOR,
                    "export",
                    MODEL,
                    *INPUT,
                    "-o",
                    str(out / "x.onnx"),
                ],
            },
            runs,
        )
        verify = [*INSPECTOR, "verify", MODEL, *INPUT]
        time_children({"warm the export cache": verify}, 1)
        memory = time_children(
            {
                "python + torch, onnx, onnxruntime, inspector + the model": [
                    sys.executable,
                    "-c",
                    _FLOOR.format(root=str(ROOT), model=MODEL),
                ],
                "python + onnxruntime": [sys.executable, "-c", "import numpy, onnxruntime"],
                "python + one onnxruntime session, one batch": [
                    sys.executable,
                    "-c",
                    _SESSION,
                    str(out / "x.onnx"),
                ],
                "inspector verify (export cached)": verify,
                "inspector verify --no-cache": [*verify, "--no-cache"],
            },
            runs,
        )
    return {"exports": exports, "memory": memory, "weights": _weight_bytes()}


def _weight_bytes() -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from large_model import LAYERS, WIDTH

    return LAYERS * (WIDTH * WIDTH + WIDTH) * 4


def markdown(result: dict) -> tuple[str, dict]:
    exports = {name: (timed(runs), peak(runs)) for name, runs in result["exports"].items()}
    (bare_time, bare_peak), (tool_time, tool_peak) = exports.values()
    wall = tool_time.wall.ratio(bare_time.wall)
    memory = tool_peak.ratio(bare_peak)
    export_rows = [
        [label, t.wall.seconds(), f"{t.cpu.median:.2f} s", p.mib()]
        for label, (t, p) in exports.items()
    ]
    peaks = {name: peak(runs) for name, runs in result["memory"].items()}
    floor, ort, session, cached, fresh = (p.median for p in peaks.values())
    budget = floor + (session - ort) + BATCH_BYTES
    memory_rows = [[label, p.mib()] for label, p in peaks.items()]
    memory_rows.append(["budget: model process + session over its floor + one batch", _mib(budget)])
    weights = result["weights"]
    text = "\n".join(
        [
            "## Large models: a 100M-parameter export and verify",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            f"The model: {weights / 4:,.0f} parameters, {_mib(weights)} of float32 weights.",
            "",
            markdown_table(["child process", "wall time", "CPU time", "peak RSS"], export_rows),
            "",
            f"`inspector export` against the bare script: wall time {wall:.2f}x "
            f"(target {WALL_TARGET}x: {verdict(wall <= WALL_TARGET)}), peak memory "
            f"{memory:.2f}x (target {PEAK_TARGET}x: {verdict(memory <= PEAK_TARGET)}).",
            "",
            markdown_table(["child process", "peak RSS"], memory_rows),
            "",
            f"`inspector verify` peaks at {cached / budget:.2f}x that budget with its export "
            f"cached and {fresh / budget:.2f}x exporting afresh.",
        ]
    )
    return text, {
        "targets": [
            (
                f"100M-parameter export within {WALL_TARGET}x the bare wall time",
                f"{wall:.2f}x",
                wall <= WALL_TARGET,
            ),
            (
                f"100M-parameter export within {PEAK_TARGET}x the bare peak memory",
                f"{memory:.2f}x",
                memory <= PEAK_TARGET,
            ),
        ],
        "figures": [
            (
                "peak memory of verifying the 100M-parameter model",
                f"{_mib(cached)} cached, {_mib(fresh)} exporting; budget (model + session + "
                f"batch) {_mib(budget)}",
            )
        ],
    }


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"
