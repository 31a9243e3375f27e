"""`inspector verify FILE.onnx --data DIR`: onnxruntime against model-zoo test data, no PyTorch."""

from __future__ import annotations

from ..defaults import ATOL, RTOL
from .compare import compare_outputs, largest_value, scale_warnings
from .files import check_onnx_file
from .report import Run, VerifyReport
from .runtime import feeds, open_session, output_names, run_session
from .testdata import read_test_data


def verify_data(onnx_path, data_dir, *, atol: float = ATOL, rtol: float = RTOL) -> VerifyReport:
    """Check an ONNX file against model-zoo test data, with onnxruntime alone (no PyTorch)."""
    path = check_onnx_file(onnx_path)
    data_sets = read_test_data(data_dir)
    session = open_session(path, path.name)
    names = output_names(session)
    report = VerifyReport(path.name, str(path), atol, rtol, reference="the test data")
    for data_set in data_sets:
        actual = run_session(session, feeds(session, data_set.inputs, path.name), path.name)
        diffs, notes = compare_outputs(names, data_set.outputs, actual, atol=atol, rtol=rtol)
        batch = batch_of(data_set.inputs)
        report.runs.append(Run(None, batch, diffs, data_set=data_set.name, notes=notes))
    report.warnings += scale_warnings([largest_value(d.outputs) for d in data_sets], atol)
    return report


def batch_of(arrays) -> int | None:
    first = arrays[0] if arrays else None
    return int(first.shape[0]) if first is not None and first.ndim else None
