"""Verify an ONNX file nobody here wrote: `inspector verify FILE.onnx --data DIR` against a bare
onnxruntime run of the same test data.

The files are onnx's own backend tests (benchmarks/onnx_corpus.py writes them in the model-zoo
layout): `test_relu`, the smallest there is, and `test_Conv2d` from the wheel's
pytorch-converted data. The bare run is one process that imports onnx and onnxruntime, opens a
session, reads every test_data_set_N with `onnx.numpy_helper` and compares with numpy's
`allclose`: what anyone checking golden data must do. inspector adds the onnx checker, checks of the
data folder, its comparison rule and the report; it runs all of it in one child process (the
checks, the session and the runs), so a hostile file cannot take the command down. Both are
child processes timed from spawn to exit, interleaved run by run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, markdown_table, time_children, timed, verdict

TARGET = 1.5
BARE = """
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

model, data = sys.argv[1], Path(sys.argv[2])
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
names = [i.name for i in session.get_inputs()]
for folder in sorted(data.glob("test_data_set_*")):
    read = lambda kind: [
        numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(folder.glob(kind + "_*.pb"))
    ]
    actual = session.run(None, dict(zip(names, read("input"))))
    assert all(np.allclose(a, e, rtol=1e-3, atol=1e-4) for a, e in zip(actual, read("output")))
"""


def subjects(folder: Path) -> dict[str, Path]:
    import onnx_corpus

    written = onnx_corpus.materialize(folder, ["test_relu"])
    wheel = {path.name: path for path in onnx_corpus.wheel_models()}
    return {**written, "test_Conv2d": wheel["test_Conv2d"]}


def measure(runs: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, model in subjects(Path(folder)).items():
            onnx_file, data = str(model / "model.onnx"), str(model)
            commands = {
                "bare": [sys.executable, "-c", BARE, onnx_file, data],
                "inspector": [*INSPECTOR, "verify", onnx_file, "--data", data],
            }
            results[name] = {key: timed(r) for key, r in time_children(commands, runs).items()}
    return results


def markdown(results: dict) -> tuple[str, dict]:
    rows, ratios = [], {}
    for name, t in results.items():
        ratios[name] = t["inspector"].wall.ratio(t["bare"].wall)
        rows.append(
            [
                f"`{name}`",
                t["bare"].wall.ms(),
                t["inspector"].wall.ms(),
                f"**{ratios[name]:.2f}x**",
                f"{t['bare'].cpu.median:.2f} s / {t['inspector'].cpu.median:.2f} s",
                f"{t['inspector'].cpu.ratio(t['bare'].cpu):.2f}x",
            ]
        )
    worst = max(ratios, key=ratios.get) if ratios else None
    columns = [
        "test",
        "bare onnxruntime run (wall)",
        "inspector verify --data (wall)",
        "wall ratio",
        "CPU bare / inspector",
        "CPU ratio",
    ]
    lines = ["## Verify --data", "", (__doc__ or "").strip(), "", markdown_table(columns, rows)]
    targets = []
    if worst:
        ok = ratios[worst] <= TARGET
        lines += [
            "",
            f"Target a small file's verify within {TARGET:.1f}x of the bare run (wall): "
            f"{verdict(ok)} (worst: {worst}, {ratios[worst]:.2f}x).",
        ]
        targets.append(
            (
                f"`verify FILE.onnx --data` within {TARGET:.1f}x of a bare onnxruntime run",
                f"worst {ratios[worst]:.2f}x ({worst})",
                ok,
            )
        )
    return "\n".join(lines), {"targets": targets}
