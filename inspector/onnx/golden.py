"""`inspector verify FILE.onnx --data DIR`: onnxruntime against model-zoo test data, no PyTorch."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..util.memory import available_memory
from ..util.text import printable
from .compare import compare_outputs, constant_reason
from .files import run_checked
from .precision import file_precision
from .report import Run, VerifyReport, nonfinite_warnings
from .runtime import feeds, open_session, output_names, run_session
from .testdata import SizeLimit, read_test_data
from .tolerances import Tolerances

_SIDES = ("the test data", "onnxruntime")


def verify_data(
    onnx_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    atol: float | Mapping[str, float] | None = None,
    rtol: float | Mapping[str, float] | None = None,
    budget: dict | None = None,
    metrics: Sequence[str] = (),
    ort_opt: str = "all",
) -> VerifyReport:
    """Check an ONNX file against model-zoo test data, with onnxruntime alone (no PyTorch).

    Args:
        onnx_path: the .onnx file (checked before onnxruntime opens it).
        data_dir: a folder of `test_data_set_N/input_K.pb` and `output_K.pb`.
        atol: as verify() takes it: a number, or {output name: number}.
        rtol: as verify() takes it: a number, or {output name: number}.
            None (both): the defaults of the file's precision (defaults.PRECISION_TOLERANCES).
        budget: as verify() takes it: {"cosine": 0.999, "sqnr": 30, ...}.
        metrics: as verify() takes them: "topk=K", "cosine".
        ort_opt: onnxruntime's graph optimization level: "disable", "basic" or "all".

    Returns:
        A VerifyReport with one run per test data set, truthy when nothing mismatched.
    """
    Tolerances.of(atol, rtol)  # a bad tolerance is refused before any process starts
    checker_warnings: list[str] = []
    # The checks, the session and the runs in one child process (files.run_checked): a crafted
    # file that crashes onnxruntime mid-run ends in one line too, and the command costs one
    # interpreter with onnx and onnxruntime imported, not two.
    report = run_checked(
        onnx_path,
        f"{__name__}:_verify_checked",
        (data_dir, atol, rtol, budget, tuple(metrics), ort_opt),
        warnings=checker_warnings,
    )
    report.warnings[:0] = checker_warnings
    return report


def _verify_checked(
    onnx_path: str, data_dir, atol, rtol, budget=None, metrics=(), ort_opt="all"
) -> VerifyReport:
    """verify_data's work, in the child, on a file that passed the checker."""
    path = Path(onnx_path)
    precision = file_precision(path)
    tolerances = Tolerances.of(atol, rtol, precision).judging(precision, budget, metrics)
    session = open_session(path, path.name, optimization=ort_opt)
    data_sets = read_test_data(
        data_dir,
        [spec.type for spec in session.get_inputs()],
        [spec.type for spec in session.get_outputs()],
        size_limit(session),
    )
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
        expected_flat, actual_flat, shape_notes = _flatten_outputs(names, data_set.outputs, actual)
        flat_names = [name for name, _ in expected_flat]
        diffs, notes = compare_outputs(
            flat_names,
            [value for _, value in expected_flat],
            [value for _, value in actual_flat],
            tolerances=tolerances,
            sides=_SIDES,
        )
        batch = batch_of(data_set.inputs)
        notes = tuple(shape_notes) + notes
        report.runs.append(Run(None, batch, diffs, data_set=data_set.name, notes=notes))
        for name, array in expected_flat:
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
    or, where a dimension is symbolic (or it is no tensor of a fixed width), half the memory
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
        plain = spec is not None and spec.type.startswith("tensor(") and "string" not in spec.type
        if spec is not None and plain and fixed:
            most = math.prod(shape) * _MOST_BYTES_PER_ELEMENT + _SLACK
            return most, f"what the model's {kind} {printable(spec.name)} {shape} can hold"
        if memory is None:
            return None
        return memory // 2, "half the memory available"

    return limit


def batch_of(arrays) -> int | None:
    first = arrays[0] if arrays else None
    ndim = getattr(first, "ndim", 0)  # a sequence or an optional has no batch
    return int(first.shape[0]) if first is not None and ndim else None


def _flatten_outputs(names: list[str], expected: list, actual: list):
    """Sequences, optionals and maps compared element by element: ([(name, array)] of each side,
    notes). An element is named after its output: `out[0]`, `out['key']`. Where the structures
    differ (lengths, an empty optional against a value), that output's arrays are left out of
    both sides and a note says how they differ, which fails the run."""
    expected_flat: list = []
    actual_flat: list = []
    notes: list[str] = []
    for index in range(max(len(expected), len(actual))):
        name = names[index] if index < len(names) else f"output_{index}"
        if index >= len(expected) or index >= len(actual):  # compare_outputs names the side
            if index < len(expected):
                expected_flat += _leaves(name, expected[index])
            else:
                actual_flat += _leaves(name, actual[index])
            continue
        want, got = list(_leaves(name, expected[index])), list(_leaves(name, actual[index]))
        if [n for n, _ in want] != [n for n, _ in got]:
            notes.append(
                f"{name}: {_SIDES[0]} gives {_structure(expected[index])}, "
                f"{_SIDES[1]} {_structure(actual[index])}"
            )
            continue
        expected_flat += want
        actual_flat += got
    return expected_flat, actual_flat, notes


def _leaves(name: str, value):
    if value is None:  # an empty optional: nothing to compare
        return
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(f"{name}[{key!r}]", value[key])
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(f"{name}[{index}]", item)
    else:
        yield name, value


def _structure(value) -> str:
    if value is None:
        return "an empty optional"
    if isinstance(value, dict):
        return f"a map of {len(value)} entries"
    if isinstance(value, (list, tuple)):
        return f"a sequence of {len(value)}"
    return "a tensor"
