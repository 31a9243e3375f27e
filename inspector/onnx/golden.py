"""`inspector verify FILE.onnx --data DIR`: onnxruntime against model-zoo test data, no PyTorch."""

from __future__ import annotations

from ..defaults import ATOL, RTOL
from ..util.memory import available_memory
from ..util.text import printable
from .compare import compare_outputs, constant_reason
from .files import check_onnx_file
from .report import Run, VerifyReport, nonfinite_warnings
from .runtime import feeds, open_session, output_names, run_session
from .testdata import SizeLimit, read_test_data
from .tolerances import Tolerances

_SIDES = ("the test data", "onnxruntime")


def verify_data(onnx_path, data_dir, *, atol=ATOL, rtol=RTOL) -> VerifyReport:
    """Check an ONNX file against model-zoo test data, with onnxruntime alone (no PyTorch).

    `atol`/`rtol` as verify() takes them: numbers, or {output name: number} dicts.
    """
    tolerances = Tolerances.of(atol, rtol)
    path = check_onnx_file(onnx_path)
    session = open_session(path, path.name)
    data_sets = read_test_data(data_dir, size_limit(session))
    names = output_names(session)
    tolerances.check_names(names, path.name)
    report = VerifyReport(
        path.name,
        str(path),
        tolerances.atol,
        tolerances.rtol,
        reference="the test data",
        tolerances=tolerances if tolerances.to_dict() else None,
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


# The widest encoding of one element in a TensorProto: a negative int32 or int64 as a varint.
_MOST_BYTES_PER_ELEMENT = 10
_SLACK = 1 << 16  # the tensor's name, dims and field tags


def size_limit(session) -> SizeLimit:
    """How large each input_K.pb / output_K.pb may be: what the model's declared shape can hold,
    or, where a dimension is symbolic (or the type has no fixed width), half the memory
    available, so a sparse 64 GiB file is refused before it is read."""
    import math

    tensors = {"input": session.get_inputs(), "output": session.get_outputs()}
    memory = available_memory()

    def limit(kind: str, index: int) -> tuple[int, str] | None:
        specs = tensors[kind]
        spec = specs[index] if index < len(specs) else None
        shape = getattr(spec, "shape", None)
        shape = [None] if shape is None else list(shape)  # unknown rank: no bound
        fixed = all(isinstance(d, int) and d >= 0 for d in shape)
        if spec is not None and fixed and "string" not in spec.type:
            most = math.prod(shape) * _MOST_BYTES_PER_ELEMENT + _SLACK
            return most, f"what the model's {kind} {printable(spec.name)} {shape} can hold"
        if memory is None:
            return None
        return memory // 2, "half the memory available"

    return limit


def batch_of(arrays) -> int | None:
    first = arrays[0] if arrays else None
    return int(first.shape[0]) if first is not None and first.ndim else None
