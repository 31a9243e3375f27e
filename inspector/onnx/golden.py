"""`inspector verify FILE.onnx --data DIR`: onnxruntime against model-zoo test data, no PyTorch."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..defaults import ATOL, RTOL
from .compare import compare_outputs, constant_reason
from .files import run_checked
from .report import Run, VerifyReport, nonfinite_warnings
from .runtime import feeds, open_session, output_names, run_session
from .testdata import read_test_data
from .tolerances import Tolerances

_SIDES = ("the test data", "onnxruntime")


def verify_data(
    onnx_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    atol: float | Mapping[str, float] = ATOL,
    rtol: float | Mapping[str, float] = RTOL,
) -> VerifyReport:
    """Check an ONNX file against model-zoo test data, with onnxruntime alone (no PyTorch).

    Args:
        onnx_path: the .onnx file (checked before onnxruntime opens it).
        data_dir: a folder of `test_data_set_N/input_K.pb` and `output_K.pb`.
        atol: as verify() takes it: a number, or {output name: number}.
        rtol: as verify() takes it: a number, or {output name: number}.

    Returns:
        A VerifyReport with one run per test data set, truthy when nothing mismatched.
    """
    Tolerances.of(atol, rtol)  # a bad tolerance is refused before any process starts
    checker_warnings: list[str] = []
    # The checks, the session and the runs in one child process (files.run_checked): a crafted
    # file that crashes onnxruntime mid-run ends in one line too, and the command costs one
    # interpreter with onnx and onnxruntime imported, not two.
    report = run_checked(
        onnx_path, f"{__name__}:_verify_checked", (data_dir, atol, rtol), warnings=checker_warnings
    )
    report.warnings[:0] = checker_warnings
    return report


def _verify_checked(onnx_path: str, data_dir, atol, rtol) -> VerifyReport:
    """verify_data's work, in the child, on a file that passed the checker."""
    tolerances = Tolerances.of(atol, rtol)
    path = Path(onnx_path)
    session = open_session(path, path.name)
    data_sets = read_test_data(
        data_dir,
        [spec.type for spec in session.get_inputs()],
        [spec.type for spec in session.get_outputs()],
    )
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
