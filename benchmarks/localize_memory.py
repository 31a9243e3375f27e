"""verify --localize's memory: every module's output compared, a chunk at a time, against a plain
verify of the same file, each a fresh child process (their peak RSS; the runs interleaved).

Two models, exported once into a temporary folder (benchmarks/localize_models.py): ten 7,776-wide
Linear layers (604,727,520 parameters, 2.25 GiB of float32 kept as external data: past protobuf's
2 GiB) and a transformers ViT of vit_b_32's size (88M parameters, 337 MiB inside the .onnx file).
`inspector verify MODEL --onnx FILE` against the same with `--localize`. Targets: a plain verify
of the model past 2 GiB within 2.5x its weights (PyTorch's copy and onnxruntime's, once each; the
ViT's is mostly the libraries' own memory, about 1 GiB), and --localize within 1.5x a plain
verify, at both sizes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, markdown_table, peak, run_child, time_children, timed, verdict

MODELS = {
    # label: (model spec, --input-shape, bytes of float32 weights)
    "ten 7,776-wide Linear layers (2.25 GiB, external data)": (
        "benchmarks/localize_models.py:ten_wide_linears",
        "3,7776",
        604_727_520 * 4,
    ),
    "vit_b_32-sized transformers ViT (337 MiB)": (
        "benchmarks/localize_models.py:vit_b_32",
        "1,3,224,224",
        88_224_232 * 4,
    ),
}
VERIFY_TARGET, LOCALIZE_TARGET = 2.5, 1.5


def measure(runs: int, models: dict | None = None) -> dict:
    results = {}
    for label, (spec, shape, weights) in (models or MODELS).items():
        with tempfile.TemporaryDirectory() as folder:
            onnx = str(Path(folder) / "model.onnx")
            run_child([*INSPECTOR, "export", spec, "--input-shape", shape, "-o", onnx])
            verify = [*INSPECTOR, "verify", spec, "--input-shape", shape, "--onnx", onnx]
            measured = time_children({"verify": verify, "localize": [*verify, "--localize"]}, runs)
        results[label] = {"weights": weights, **measured}
    return results


def markdown(result: dict) -> tuple[str, dict]:
    rows, targets = [], []
    for label, measured in result.items():
        weights = measured["weights"]
        plain, local = peak(measured["verify"]), peak(measured["localize"])
        per_weights, ratio = plain.median / weights, local.ratio(plain)
        rows.append(
            [
                label,
                plain.mib(),
                f"{per_weights:.2f}x",
                local.mib(),
                f"{ratio:.2f}x",
                timed(measured["verify"]).wall.seconds(),
                timed(measured["localize"]).wall.seconds(),
            ]
        )
        if weights > 2**31:  # a small model's verify is mostly the libraries' own memory
            targets.append(
                (
                    f"verify of {label} within {VERIFY_TARGET}x its weights",
                    f"{per_weights:.2f}x",
                    per_weights <= VERIFY_TARGET,
                )
            )
        targets.append(
            (
                f"--localize of {label} within {LOCALIZE_TARGET}x verify",
                f"{ratio:.2f}x",
                ratio <= LOCALIZE_TARGET,
            )
        )
    table = markdown_table(
        [
            "model",
            "verify peak RSS",
            "of the weights",
            "verify --localize peak RSS",
            "of verify",
            "verify (wall)",
            "--localize (wall)",
        ],
        rows,
    )
    met = all(ok for _, _, ok in targets)
    text = "\n".join(
        [
            "## verify --localize: memory at every size",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            table,
            "",
            f"Targets (verify past 2 GiB within {VERIFY_TARGET}x its weights, --localize within "
            f"{LOCALIZE_TARGET}x verify): {verdict(met)}.",
        ]
    )
    return text, {"targets": targets}


if __name__ == "__main__":  # python benchmarks/localize_memory.py [RUNS]: one section alone
    print(markdown(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3))[0])
