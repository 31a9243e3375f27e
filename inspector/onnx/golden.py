"""`inspector verify FILE.onnx --data DIR`: onnxruntime against model-zoo test data, no PyTorch."""

from __future__ import annotations

from .compare import compare_outputs, constant_reason
from .files import check_onnx_file
from .precision import file_precision
from .report import Run, VerifyReport, nonfinite_warnings
from .runtime import feeds, open_session, output_names, run_session
from .testdata import read_test_data
from .tolerances import Tolerances

_SIDES = ("the test data", "onnxruntime")


def verify_data(
    onnx_path, data_dir, *, atol=None, rtol=None, budget=None, metrics=(), ort_opt="all"
) -> VerifyReport:
    """Check an ONNX file against model-zoo test data, with onnxruntime alone (no PyTorch).

    `atol`/`rtol` as verify() takes them: numbers, or {output name: number} dicts (None: the
    defaults of the file's precision); `budget`, `metrics` and `ort_opt` as verify() too.
    """
    path = check_onnx_file(onnx_path)
    precision = file_precision(path)
    tolerances = Tolerances.of(atol, rtol, precision).judging(precision, budget, metrics)
    data_sets = read_test_data(data_dir)
    session = open_session(path, path.name, optimization=ort_opt)
    names = output_names(session)
    tolerances.check_names(names, path.name)
    report = VerifyReport(
        path.name,
        str(path),
        tolerances.atol,
        tolerances.rtol,
        reference="the test data",
        tolerances=tolerances if tolerances.to_dict() or tolerances.budget else None,
        precision=precision,
    )
    constant: dict = {}
    for data_set in data_sets:
        actual = run_session(session, feeds(session, data_set.inputs, path.name), path.name)
        diffs, notes = compare_outputs(
            names, data_set.outputs, actual, tolerances=tolerances, sides=_SIDES
        )
        batch = batch_of(data_set.inputs)
        report.runs.append(Run(None, batch, diffs, data_set=data_set.name, notes=notes))
        for name, array in zip(names, data_set.outputs, strict=False):
            constant.setdefault(name, []).append(constant_reason(array))
    report.warnings += nonfinite_warnings(report.runs, "the test data")
    report.warnings += [
        f"output {name!r} cannot tell a right export from a wrong one ({reasons[0]}): "
        "this data proves little about the layers before it"
        for name, reasons in constant.items()
        if all(reasons)
    ]
    return report


def batch_of(arrays) -> int | None:
    first = arrays[0] if arrays else None
    return int(first.shape[0]) if first is not None and first.ndim else None
