"""What one ml_dtypes release costs every process that imports onnx, against another release.

onnx imports ml_dtypes, and ml_dtypes 0.7.0 registers its NumPy loops in about 0.8 s (NumPy's
PyUFunc_AddLoop searches the loops already there, and 0.7.0 adds many), where 0.6.0 takes about
0.1 s. inspector pays it in every command that imports onnx and again in the child process that
checks an ONNX file before onnxruntime runs it. Each command is a child process, timed from spawn
to exit, the interpreters' runs interleaved:

    python benchmarks/ml_dtypes_import.py PYTHON_A PYTHON_B [--runs 7]

Each interpreter needs numpy, ml_dtypes, onnx and onnxruntime; this checkout's inspector is put on
its path. The table's ratio is B's median over A's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, markdown_table, time_children, wall

SNIPPETS = {
    "python -c pass": "pass",
    "import ml_dtypes": "import ml_dtypes",
    "import onnx": "import onnx",
    # inspector's own check: this process imports no onnx, its child imports onnx and onnxruntime
    "check_onnx_file (its child process)": (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from inspector.onnx.files import check_onnx_file; check_onnx_file(sys.argv[1])"
    ),
}
MAKE_FILE = (
    "import sys, onnx; from onnx import helper, TensorProto as T; "
    "x = helper.make_tensor_value_info('x', T.FLOAT, [2, 3]); "
    "y = helper.make_tensor_value_info('y', T.FLOAT, [2, 3]); "
    "g = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g', [x], [y]); "
    "onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)], ir_version=10),"
    " sys.argv[1])"
)


def ml_dtypes_version(python: str) -> str:
    code = "import importlib.metadata as m; print(m.version('ml_dtypes'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def measure(pythons: list[str], runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        model = str(Path(folder) / "relu.onnx")
        subprocess.run([pythons[0], "-c", MAKE_FILE, model], check=True)
        commands = {
            (python, name): [python, "-c", code, model]
            for name, code in SNIPPETS.items()
            for python in pythons
        }
        results = time_children({" ".join(k): argv for k, argv in commands.items()}, runs)
    return {key: wall(results[" ".join(key)]) for key in commands}


def markdown(pythons: list[str], stats: dict) -> str:
    a, b = pythons
    names = [f"ml_dtypes {ml_dtypes_version(p)}" for p in pythons]
    rows = [
        [
            f"`{name}`",
            stats[a, name].ms(),
            stats[b, name].ms(),
            f"{stats[b, name].ratio(stats[a, name]):.2f}x",
        ]
        for name in SNIPPETS
    ]
    return markdown_table(["command", names[0], names[1], "ratio"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pythons", nargs=2, metavar="PYTHON")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(markdown(args.pythons, measure(args.pythons, args.runs)))


if __name__ == "__main__":
    sys.exit(main())
