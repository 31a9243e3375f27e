"""Prove that onnxruntime computes what PyTorch computes, on the same seeded random inputs.

An element mismatches when |torch - ort| > atol + rtol * |torch| (NaN equals NaN; a difference in
shape or dtype mismatches every element). A VerifyReport is truthy only when nothing mismatched, so
`assert inspector.verify(model, x)` is a real test, and the CLI exits 1 on any mismatch.

Only numpy, onnx and onnxruntime load at module level here; torch loads inside the functions that
run a PyTorch model, so `inspector verify FILE.onnx --data DIR` never imports it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InspectorError
from .onnx_file import check_onnx_file
from .runtime import feeds, open_session, run_session
from .testdata import DataSet, read_test_data, write_test_data

ATOL = 1e-4
RTOL = 1e-3
SEEDS = 3


@dataclass(frozen=True)
class OutputDiff:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    mismatched: int  # elements with |torch - ort| > atol + rtol * |torch|

    def __bool__(self) -> bool:
        return self.mismatched == 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "max_abs_diff": _json_float(self.max_abs_diff),
            "max_rel_diff": _json_float(self.max_rel_diff),
            "mismatched": self.mismatched,
        }


@dataclass(frozen=True)
class Run:
    """One set of inputs through both runtimes: a seed and batch size, or a golden data set."""

    seed: int | None
    batch_size: int | None
    outputs: tuple[OutputDiff, ...]
    data_set: str | None = None
    notes: tuple[str, ...] = ()  # shape, dtype or output-count differences, in words

    def __bool__(self) -> bool:
        return all(self.outputs) and not self.notes

    @property
    def label(self) -> str:
        if self.data_set:
            return self.data_set
        seed = "given inputs" if self.seed is None else f"seed {self.seed}"
        return f"{seed}, batch {self.batch_size}"

    def to_dict(self) -> dict:
        data = {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "outputs": [diff.to_dict() for diff in self.outputs],
        }
        if self.data_set:
            data["data_set"] = self.data_set
        if self.notes:
            data["notes"] = list(self.notes)
        return data


@dataclass
class VerifyReport:
    """The verdict: truthy when every output of every run matched within atol and rtol."""

    model: str
    onnx_file: str
    atol: float
    rtol: float
    runs: list[Run] = field(default_factory=list)
    first_divergence: object = None  # a localize.Divergence, or None
    localized: bool = False
    reference: str = "PyTorch"  # what onnxruntime is compared with
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(self.runs)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        data = {
            "passed": self.passed,
            "atol": self.atol,
            "rtol": self.rtol,
            "runs": [run.to_dict() for run in self.runs],
            "model": self.model,
            "warnings": list(self.warnings),
            "onnx": self.onnx_file,
        }
        if self.localized:
            divergence = self.first_divergence
            data["first_divergence"] = divergence.to_dict() if divergence else None
        return data

    def __str__(self) -> str:
        lines = [self._headline(), _diff_table(self.runs)]
        lines += [f"  {run.label}: {note}" for run in self.runs for note in run.notes]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.localized:
            lines.append(
                f"  first divergence: {self.first_divergence}"
                if self.first_divergence
                else "  first divergence: none, every layer matches within tolerance"
            )
        return "\n".join(line for line in lines if line)

    def _headline(self) -> str:
        where = f"atol {self.atol:g}, rtol {self.rtol:g}; {self.onnx_file}"
        if self.passed:
            return (
                f"PASSED | {self.model}: onnxruntime matches {self.reference} in {len(self.runs)} "
                f"run(s) ({where})"
            )
        failed = sum(not run for run in self.runs)
        return f"FAILED | {self.model}: {failed} of {len(self.runs)} run(s) mismatch ({where})"


def compare_arrays(
    name: str, expected, actual, *, atol: float = ATOL, rtol: float = RTOL
) -> OutputDiff:
    """Element-wise |expected - actual| > atol + rtol * |expected|, with NaN equal to NaN."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    shape = tuple(int(d) for d in expected.shape)
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return OutputDiff(name, shape, math.inf, math.inf, max(expected.size, actual.size, 1))
    if expected.size == 0:
        return OutputDiff(name, shape, 0.0, 0.0, 0)
    want, got = expected.astype(np.float64), actual.astype(np.float64)
    finite = np.isfinite(want) & np.isfinite(got)
    # Equal infinities and NaN beside NaN agree; any other non-finite pair disagrees outright.
    agree = (np.isnan(want) & np.isnan(got)) | (want == got)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(want - got), np.where(agree, 0.0, np.inf))
        bad = np.where(finite, diff > atol + rtol * np.abs(want), ~agree)
        # Relative size only where the value is not tiny: below atol, atol is what judges it.
        sizable = finite & (np.abs(want) > max(atol, np.finfo(np.float64).tiny))
        rel = diff[sizable] / np.abs(want[sizable])
    max_rel = float(rel.max()) if rel.size else 0.0
    if (~finite & ~agree).any():
        max_rel = math.inf
    return OutputDiff(name, shape, float(diff.max()), max_rel, int(bad.sum()))


def compare_outputs(names: list[str], expected: list, actual: list, *, atol: float, rtol: float):
    """Per-output diffs plus notes in words for what no number says (shape, dtype, count)."""
    diffs, notes = [], []
    for index in range(max(len(expected), len(actual))):
        name = names[index] if index < len(names) else f"output_{index}"
        if index >= len(expected) or index >= len(actual):
            side = "PyTorch" if index < len(expected) else "onnxruntime"
            array = expected[index] if index < len(expected) else actual[index]
            notes.append(f"{name}: only {side} gives this output")
            diffs.append(
                OutputDiff(name, tuple(array.shape), math.inf, math.inf, max(array.size, 1))
            )
            continue
        want, got = np.asarray(expected[index]), np.asarray(actual[index])
        if want.shape != got.shape or want.dtype != got.dtype:
            notes.append(
                f"{name}: PyTorch gives {want.dtype}{list(want.shape)}, onnxruntime "
                f"{got.dtype}{list(got.shape)}"
            )
        diffs.append(compare_arrays(name, want, got, atol=atol, rtol=rtol))
    return tuple(diffs), tuple(notes)


def verify_data(onnx_path, data_dir, *, atol: float = ATOL, rtol: float = RTOL) -> VerifyReport:
    """Check an ONNX file against model-zoo test data, with onnxruntime alone (no PyTorch)."""
    path = check_onnx_file(onnx_path)
    data_sets = read_test_data(data_dir)
    session = open_session(path, path.name)
    names = [output.name for output in session.get_outputs()]
    report = VerifyReport(path.name, str(path), atol, rtol, reference="the test data")
    for data_set in data_sets:
        actual = run_session(session, feeds(session, data_set.inputs, path.name), path.name)
        diffs, notes = compare_outputs(names, data_set.outputs, actual, atol=atol, rtol=rtol)
        batch = _batch_of(data_set.inputs)
        report.runs.append(Run(None, batch, diffs, data_set=data_set.name, notes=notes))
    report.warnings += scale_warnings([largest_value(d.outputs) for d in data_sets], atol)
    return report


def verify_onnx(
    loaded,
    onnx_path,
    *,
    atol: float = ATOL,
    rtol: float = RTOL,
    seeds: int = SEEDS,
    batch_sizes=None,
    given_inputs=None,
    save_data=None,
    localize: bool = False,
) -> VerifyReport:
    """Run a LoadedModel in PyTorch and its ONNX file in onnxruntime on the same inputs."""
    path = check_onnx_file(onnx_path)
    session = open_session(path, path.name)
    cases = _input_cases(loaded, session, seeds, batch_sizes, given_inputs)
    report = VerifyReport(loaded.spec, str(path), atol, rtol, localized=localize)
    keep = save_data is not None
    with eval_mode(loaded.module):
        results = [
            _run_case(loaded, session, path.name, seed, inputs, atol, rtol, keep)
            for seed, inputs in cases
        ]
        report.runs = [run for run, _, _ in results]
        report.warnings += scale_warnings([peak for _, _, peak in results], atol)
        if localize:
            from .localize import first_divergence

            inputs = _localize_inputs(cases, report.runs)
            report.first_divergence = first_divergence(loaded, path, inputs, atol=atol, rtol=rtol)
    if keep:
        write_test_data(save_data, [data_set for _, data_set, _ in results])
    return report


def _run_case(loaded, session, label, seed, inputs, atol, rtol, keep: bool):
    """One set of inputs through both runtimes -> (Run, the inputs and PyTorch's outputs as a
    DataSet when `keep` (for --save-data), the largest output value)."""
    arrays = [tensor.detach().cpu().numpy() for tensor in inputs]
    expected = torch_outputs(loaded, inputs)
    actual = run_session(session, feeds(session, arrays, label), label)
    names = [output.name for output in session.get_outputs()]
    diffs, notes = compare_outputs(names, expected, actual, atol=atol, rtol=rtol)
    run = Run(seed, _batch_of(arrays), diffs, notes=notes)
    if not keep:
        return run, None, largest_value(expected)
    input_names = [spec.name for spec in session.get_inputs()]
    return run, DataSet("", arrays, expected, input_names, names), largest_value(expected)


def verify(
    model,
    *example_inputs,
    onnx=None,
    graph: str = "authored",
    atol: float = ATOL,
    rtol: float = RTOL,
    seeds: int = SEEDS,
    batch_sizes=None,
    localize: bool = False,
    save_data=None,
    use_cache: bool = False,
) -> VerifyReport:
    """Export `model` (or take `onnx=`) and compare onnxruntime with PyTorch: truthy when it passed.

    `model` is an nn.Module (give its example inputs), a LoadedModel, or a MODEL spec string.
    The example inputs themselves are one run; seeded random-normal inputs of the same shapes, over
    `seeds` seeds and `batch_sizes` (default: 1 and another size), are the others.
    """
    loaded = _as_loaded(model, example_inputs)
    options = dict(
        atol=atol,
        rtol=rtol,
        seeds=seeds,
        batch_sizes=batch_sizes,
        given_inputs=example_inputs or None,
        save_data=save_data,
        localize=localize,
    )
    _check_tolerances(atol, rtol, seeds)
    if onnx is not None:
        return verify_onnx(loaded, onnx, **options)
    from .export import exported_model

    with eval_mode(loaded.module), exported_model(loaded, graph=graph, use_cache=use_cache) as path:
        report = verify_onnx(loaded, path, **options)
    if not path.exists():  # a temporary export, gone now: say what it was instead
        report.onnx_file = f"temporary export, {graph} graph"
    return report


def largest_value(arrays: list) -> float | None:
    """The largest finite |value| among float outputs (None without float outputs)."""
    peaks = [
        float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))
        for a in map(np.asarray, arrays)
        if np.issubdtype(a.dtype, np.floating)
    ]
    return max(peaks, default=None)


def scale_warnings(peaks: list, atol: float) -> list[str]:
    """Outputs far below atol make a check that cannot fail (an untrained MobileNetV3 gives ~1e-9):
    say so rather than let PASSED mean nothing."""
    peaks = [peak for peak in peaks if peak is not None]
    if not peaks or max(peaks) >= 10 * atol:
        return []
    peak = max(peaks)
    return [
        f"the largest output value is {peak:.2g}, under 10 x atol ({atol:g}): "
        "differences this small can hardly fail; use a smaller --atol or real weights"
    ]


def torch_outputs(loaded, inputs) -> list:
    """PyTorch's outputs as numpy arrays, in the exporter's (pytree) order."""
    import torch
    from torch.utils import _pytree

    try:
        with torch.inference_mode():
            outputs = loaded.module(*inputs)
    except (RuntimeError, ValueError, TypeError) as error:
        shapes = ", ".join(str(list(t.shape)) for t in inputs)
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InspectorError(
            f"{loaded.spec}: forward failed on input shape {shapes}: {reason}"
        ) from None
    leaves = _pytree.tree_leaves(outputs)
    return [leaf.detach().cpu().numpy() for leaf in leaves if isinstance(leaf, torch.Tensor)]


@contextmanager
def eval_mode(module):
    """Eval mode for the comparison; every submodule's own training flag comes back afterwards."""
    saved = [(sub, sub.training) for sub in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for sub, training in saved:
            sub.training = training


def save_report(report: VerifyReport, destination) -> Path:
    """Write the JSON report atomically: a reader sees the old file or the whole new one."""
    destination = Path(destination)
    check_report_destination(destination)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    except OSError as error:  # a read-only folder (for root too: chattr +i, a read-only mount)
        raise InspectorError(
            f"--report {destination}: cannot write in {destination.parent}: "
            f"{error.strerror or error}"
        ) from None
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(report.to_dict(), stream, indent=2)
            stream.write("\n")
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def check_report_destination(destination) -> None:
    """Refuse a --report path we could not write, before any slow work starts."""
    destination = Path(destination)
    if not destination.parent.is_dir():
        raise InspectorError(f"--report {destination}: folder {destination.parent} does not exist")
    if destination.is_dir():
        raise InspectorError(f"--report {destination} is a folder")


def default_batch_sizes(session, loaded) -> list[int]:
    """A fixed batch axis allows only its size; a dynamic one gets 1 and a size not traced with."""
    first = session.get_inputs()[0].shape
    if first and isinstance(first[0], int):
        return [first[0]]
    example = loaded.input_shapes[0][0] if loaded.input_shapes[0] else 1
    # The exporter traces with the example batch (at least 2); 3 (or 5) differs from both.
    return [1, 5 if example == 3 else 3]


def _input_cases(loaded, session, seeds: int, batch_sizes, given_inputs) -> list:
    cases = [(None, tuple(given_inputs))] if given_inputs else []
    for batch_size in batch_sizes or default_batch_sizes(session, loaded):
        cases += [
            (seed, loaded.example_inputs(batch_size=batch_size, seed=seed)) for seed in range(seeds)
        ]
    return cases


def _localize_inputs(cases: list, runs: list[Run]):
    """The inputs of the first failing run (where a divergence shows), else of the first seeded
    one: inputs a user chose (ones, say) can hide a wrong weight."""
    failing = [inputs for (_, inputs), run in zip(cases, runs, strict=True) if not run]
    seeded = [inputs for seed, inputs in cases if seed is not None]
    return (failing or seeded or [cases[0][1]])[0]


def _as_loaded(model, example_inputs):
    from .loading import LoadedModel, load_model

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str):
        return load_model(model)
    import torch

    if not isinstance(model, torch.nn.Module):
        raise InspectorError(
            f"verify() takes an nn.Module, a LoadedModel or a MODEL spec, "
            f"not {type(model).__name__}"
        )
    if not example_inputs or not all(isinstance(t, torch.Tensor) for t in example_inputs):
        raise InspectorError(
            "verify(module, *example_inputs): give one example tensor per forward argument"
        )
    shapes = [tuple(t.shape) for t in example_inputs]
    return LoadedModel(type(model).__name__, model, shapes)


def _check_tolerances(atol: float, rtol: float, seeds: int) -> None:
    if not (atol >= 0 and rtol >= 0):
        raise InspectorError(f"atol and rtol must be numbers >= 0 (got {atol}, {rtol})")
    if seeds < 0:
        raise InspectorError(f"seeds must be >= 0 (got {seeds})")


def _batch_of(arrays) -> int | None:
    first = arrays[0] if arrays else None
    return int(first.shape[0]) if first is not None and first.ndim else None


def _json_float(value: float):
    # JSON has no Infinity or NaN; null marks "no finite difference" (a shape or NaN mismatch).
    return value if math.isfinite(value) else None


def _diff_table(runs: list[Run]) -> str:
    from io import StringIO

    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for title in ("run", "output", "shape", "max abs diff", "max rel diff", "mismatched"):
        table.add_column(
            title, justify="right" if "diff" in title or title == "mismatched" else "left"
        )
    for run in runs:
        for diff in run.outputs:
            table.add_row(
                run.label,
                diff.name,
                str(list(diff.shape)),
                f"{diff.max_abs_diff:.3g}",
                f"{diff.max_rel_diff:.3g}",
                f"{diff.mismatched} / {math.prod(diff.shape)}",
            )
    console = Console(file=StringIO(), width=160, color_system=None, highlight=False)
    console.print(table)
    text = console.file.getvalue()
    return "\n".join("  " + line.rstrip() for line in text.splitlines() if line.strip())


class _CallableModule(types.ModuleType):
    """`inspector.verify` names both this module and the function above, and importing the module
    makes Python bind the package attribute to the module. Calling the module calls the function,
    so `inspector.verify(model, x)` works whichever of the two the name resolves to."""

    def __call__(self, *args, **kwargs) -> VerifyReport:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
