"""Prove that onnxruntime computes what PyTorch computes, on the same seeded random inputs.

The comparison itself (the mismatch rule and its statistics) is `inspector.onnx.compare`; this
module runs the PyTorch side. Every dynamic axis the file declares is varied: the batch over
`batch_sizes`, other axes (a sequence) between a smaller and a larger size than the example's.
When an output cannot tell a right export from a wrong one (constant, tiny, or the same for every
input), every module's output is compared as well (`inspector.verification.localize`), and the
verdict rests on them too. A VerifyReport is truthy only when nothing mismatched, so `assert inspector.verify(model,
x)` is a real test, and the CLI exits 1 on any mismatch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..defaults import ATOL, EXPORTER, GRAPH, OPSET, RTOL, SEEDS
from ..errors import InspectorError
from ..onnx.compare import blind_reason, compare_outputs
from ..onnx.files import check_onnx_file
from ..onnx.golden import batch_of
from ..onnx.report import Run, VerifyReport, nonfinite_warnings
from ..onnx.repro import check_repro_request
from ..onnx.runtime import feeds, open_session, output_names, run_session
from ..onnx.testdata import DataSet, write_test_data
from ..onnx.tolerances import Tolerances
from ..usermodel.inputs import Inputs, to_numpy
from ..usermodel.outputs import named_outputs
from ..usermodel.usercode import forward_hint, user_code
from ..util.modes import eval_mode
from ..util.progress import step

if TYPE_CHECKING:
    from torch import nn

    from ..export.exporter import ExportOptions
    from ..loading import LoadedModel
    from ..usermodel.inputs import DynamicDim


def verify(
    model: nn.Module | LoadedModel | str,
    *args: Any,
    onnx: str | os.PathLike[str] | None = None,
    graph: str = GRAPH,
    exporter: str = EXPORTER,
    opset: int = OPSET,
    dynamic_batch: bool = True,
    dynamic_dims: Iterable[DynamicDim | str] = (),
    atol: float | Mapping[str, float] = ATOL,
    rtol: float | Mapping[str, float] = RTOL,
    seeds: int = SEEDS,
    batch_sizes: Sequence[int] | None = None,
    localize: bool = False,
    repro: str | os.PathLike[str] | None = None,
    save_data: str | os.PathLike[str] | None = None,
    use_cache: bool = False,
    export_options: ExportOptions | None = None,
    **kwargs: Any,
) -> VerifyReport:
    """Export `model` (or take `onnx=`) and compare onnxruntime with PyTorch: truthy when it passed.

    `model` is an nn.Module called as `model(*args, **kwargs)` (tensors keep their dtypes:
    int64 token ids stay int64), a LoadedModel, or a MODEL spec string. The inputs given are one
    run; seeded inputs of the same dtypes and value ranges, over `seeds` seeds and `batch_sizes`
    (default: 1 and another size), are the others. graph, exporter, opset, dynamic_batch and
    dynamic_dims are export_onnx's options. `atol` and `rtol` are numbers, or {output name: number}
    dicts for the outputs that need their own (the others keep the defaults). With `localize`,
    the module where onnxruntime first departs from PyTorch is named; with `repro` (a folder) too,
    that module's part of the graph is written there with PyTorch's values as test data.

    Args:
        model: an nn.Module (called as `model(*args, **kwargs)`), a LoadedModel, or a MODEL spec.
        *args: the module's positional example inputs.
        onnx: an exported file to check instead of exporting `model`.
        graph: export_onnx's option.
        exporter: export_onnx's option.
        opset: export_onnx's option.
        dynamic_batch: export_onnx's option.
        dynamic_dims: export_onnx's option.
        atol: the absolute tolerance, or {output name: tolerance}.
        rtol: the relative tolerance, or {output name: tolerance}.
        seeds: seeded random inputs per batch size.
        batch_sizes: the batch sizes to run (default: 1 and another size).
        localize: compare every module's output and name the root cause of a mismatch.
        repro: with `localize`, a folder for the diverging module's subgraph and test data.
        save_data: a folder for the inputs and PyTorch's outputs as model-zoo test data.
        use_cache: export through the export cache.
        export_options: graph, exporter, opset, dynamic_batch and dynamic_dims at once (what
            the CLI passes); the five keywords are then not read.
        **kwargs: the module's keyword example inputs.

    Returns:
        A VerifyReport, truthy when no output mismatched; it prints PASSED/FAILED and a table.

    Raises:
        InspectorError: the model does not load, export or run, or an argument is wrong.
    """
    from ..export.exporter import ExportOptions
    from ..loading import as_loaded

    loaded = as_loaded(model, args, kwargs, caller="verify")
    tolerances = _check_tolerances(atol, rtol, seeds)
    check_repro_request(repro, localize)
    checks: dict[str, Any] = dict(
        atol=tolerances,  # parsed once: verify_onnx takes the Tolerances as they are
        seeds=seeds,
        batch_sizes=batch_sizes,
        save_data=save_data,
        localize=localize,
        repro=repro,
    )
    if onnx is not None:
        return verify_onnx(loaded, onnx, **checks)
    from ..export.cache import exported_model
    from ..export.exporter import dynamic_dims_of

    options = export_options or ExportOptions(
        graph, exporter, opset, dynamic_batch, dynamic_dims_of(dynamic_dims)
    )
    with (
        eval_mode(loaded.module),
        exported_model(loaded, options=options, use_cache=use_cache) as path,
    ):
        report = verify_onnx(loaded, path, **checks)
    # The export verify made itself: named for what it is, not by its file (the cache's is a hash).
    kept = "cached" if path.exists() else "temporary"
    report.onnx_file = f"{kept} export, {options.graph} graph"
    return report


def verify_onnx(
    loaded: LoadedModel,
    onnx_path,
    *,
    atol: float | Mapping[str, float] | Tolerances = ATOL,
    rtol: float | Mapping[str, float] = RTOL,
    seeds: int = SEEDS,
    batch_sizes=None,
    save_data=None,
    localize: bool = False,
    repro=None,
) -> VerifyReport:
    """Run a LoadedModel in PyTorch and its ONNX file in onnxruntime on the same inputs.

    When an output cannot tell a right export from a wrong one (constant, or below 10 x atol),
    every module's output is compared as well, and the verdict rests on them too.
    """
    tolerances = Tolerances.of(atol, rtol)
    check_repro_request(repro, localize)
    with step("checking the ONNX file and opening it in onnxruntime"):
        path = check_onnx_file(onnx_path)
        session = open_session(path, path.name)
    tolerances.check_names(output_names(session), loaded.spec)
    cases = input_cases(loaded, session, seeds, batch_sizes)
    report = VerifyReport(
        loaded.spec,
        str(path),
        tolerances.atol,
        tolerances.rtol,
        localized=localize,
        tolerances=tolerances if tolerances.to_dict() else None,
    )
    keep = save_data is not None
    with eval_mode(loaded.module):
        results = []
        for number, case in enumerate(cases, 1):
            with step(
                f"input set {number} of {len(cases)}: running PyTorch and onnxruntime, comparing"
            ):
                results.append(_run_case(loaded, session, path.name, case, tolerances, keep))
        report.runs = [result.run for result in results]
        report.warnings += nonfinite_warnings(report.runs, "PyTorch")
        blind = blind_outputs(results)
        if blind or localize:
            from .localize import compare_modules

            inputs, label = _module_inputs(cases, report.runs)
            with step("comparing every module's output in PyTorch and onnxruntime"):
                compare_modules(report, loaded, path, inputs, label, blind=blind, repro=repro)
    if keep:
        write_test_data(save_data, [r.data_set for r in results if r.data_set is not None])
    return report


class Case:
    """One set of inputs: a seed (None for the inputs given) and the sizes of dynamic axes."""

    def __init__(self, seed: int | None, inputs: Inputs, sizes: dict[str, int]):
        self.seed, self.inputs, self.sizes = seed, inputs, sizes


class CaseResult:
    """A case's Run, what each output tells (blind_reason, a digest to spot one that never
    changes), and its inputs and PyTorch's outputs as a DataSet when they are kept."""

    def __init__(self, run: Run, blind: dict, digests: dict, data_set: DataSet | None):
        self.run, self.blind, self.digests, self.data_set = run, blind, digests, data_set


def _run_case(
    loaded: LoadedModel, session, label, case: Case, tolerances, keep: bool
) -> CaseResult:
    """One set of inputs through both runtimes."""
    arrays = case.inputs.arrays()
    expected = torch_outputs(loaded, case.inputs)
    actual = run_session(session, feeds(session, arrays, label), label)
    names = output_names(session)
    diffs, notes = compare_outputs(names, expected, actual, tolerances=tolerances)
    other_sizes = {k: v for k, v in case.sizes.items() if k != "batch"}
    run = Run(case.seed, batch_of(arrays), diffs, notes=notes, sizes=other_sizes)
    pairs = list(zip(names, expected, strict=False))
    blind = {name: blind_reason(array, tolerances.for_output(name)[0]) for name, array in pairs}
    digests = {name: _digest(array, case.seed) for name, array in pairs}
    if not keep:
        return CaseResult(run, blind, digests, None)
    input_names = [spec.name for spec in session.get_inputs()]
    return CaseResult(run, blind, digests, DataSet("", arrays, expected, input_names, names))


def blind_outputs(results: list[CaseResult]) -> dict[str, str]:
    """Output name -> why it cannot tell a right export from a wrong one: constant or tiny in
    every run, or the same whatever the inputs (a head that ignores its features)."""
    blind: dict[str, str] = {}
    for name in dict.fromkeys(name for result in results for name in result.blind):
        reasons = [result.blind.get(name) for result in results]
        if all(reasons):
            blind[name] = str(reasons[0])
        elif _unchanged(name, results):
            blind[name] = "it is the same whatever the inputs"
    return blind


def _unchanged(name: str, results: list[CaseResult]) -> bool:
    """True when runs of two different seeds gave `name` the same shape, dtype and bytes."""
    seeds_by_value: dict[tuple, set] = {}
    for result in results:
        seed, value = result.digests.get(name) or (None, None)
        if seed is not None and value is not None:
            seeds_by_value.setdefault(value, set()).add(seed)
    return any(len(seeds) > 1 for seeds in seeds_by_value.values())


def _digest(array, seed) -> tuple | None:
    """(seed, (shape, dtype, digest of the bytes)) of a float output, or None."""
    import hashlib

    from ..onnx.compare import is_float

    if not is_float(array.dtype):
        return None
    data = hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()
    return seed, (array.shape, str(array.dtype), data)


def torch_outputs(loaded: LoadedModel, inputs: Inputs) -> list:
    """PyTorch's outputs as numpy arrays, in the exporter's (pytree) order."""
    import torch

    try:
        running = user_code(loaded.spec, "its forward", failure=f"{loaded.spec} failed")
        with running, torch.inference_mode():
            outputs = inputs.call(loaded.module)
    except InspectorError as error:
        reason = str(error).removeprefix(f"{loaded.spec} failed: ")
        raise InspectorError(
            f"{loaded.spec}: forward failed on inputs {inputs.describe()}: {reason}"
            f"{forward_hint(reason)}"
        ) from error
    return [to_numpy(tensor) for _, tensor in named_outputs(outputs)]


def input_cases(loaded: LoadedModel, session, seeds: int, batch_sizes=None) -> list[Case]:
    """The inputs given (if any), then `seeds` seeded sets per batch size; each batch size comes
    with its own size of every other dynamic axis the file declares (smaller, then larger)."""
    cases = [Case(None, loaded.given, {})] if loaded.given is not None else []
    axes = dynamic_axes(session, loaded)
    for index, batch_size in enumerate(batch_sizes or default_batch_sizes(session, loaded)):
        sizes: dict[str, int] = {}
        for (input_index, axis), label in axes.items():
            example = loaded.inputs[input_index].shape[axis]
            sizes.setdefault(label, batch_size if axis == 0 else _other_size(example, index))
        by_axis = {key: sizes[label] for key, label in axes.items()}
        if not axes:
            by_axis = {(i, 0): batch_size for i, spec in enumerate(loaded.inputs) if spec.shape}
        cases += [
            Case(seed, loaded.example_inputs(seed=seed, sizes=by_axis), sizes)
            for seed in range(seeds)
        ]
    return cases


def dynamic_axes(session, loaded: LoadedModel) -> dict[tuple[int, int], str]:
    """(input index, axis) -> label, for every symbolic axis of the file's inputs."""
    axes = {}
    for index, value in enumerate(session.get_inputs()[: len(loaded.inputs)]):
        rank = len(loaded.inputs[index].shape)
        for axis, dim in enumerate(value.shape[:rank]):
            if not isinstance(dim, int):
                axes[(index, axis)] = str(dim)
    return axes


def _other_size(example: int, index: int) -> int:
    """A size of a non-batch dynamic axis that the export was not traced with: half the
    example's for the first batch size, a little more than it for the others."""
    return max(1, example // 2) if index == 0 else example + 3


def default_batch_sizes(session, loaded: LoadedModel) -> list[int]:
    """A fixed batch axis allows only its size; a dynamic one gets 1 and a size not traced with."""
    first = session.get_inputs()[0].shape if session.get_inputs() else []
    if first and isinstance(first[0], int):
        return [first[0]]
    example = loaded.input_shapes[0][0] if loaded.input_shapes and loaded.input_shapes[0] else 1
    # The exporter traces with the example batch (at least 2); 3 (or 5) differs from both.
    return [1, 5 if example == 3 else 3]


def _module_inputs(cases: list[Case], runs: list[Run]) -> tuple[Inputs, str]:
    """The inputs of the first failing run (where a divergence shows), else of the first seeded
    one: inputs a user chose (ones, say) can hide a wrong weight. With the run's label."""
    pairs = list(zip(cases, runs, strict=True))
    failing = [(case, run) for case, run in pairs if not run]
    seeded = [(case, run) for case, run in pairs if case.seed is not None]
    case, run = (failing or seeded or pairs)[0]
    return case.inputs, run.label


def _check_tolerances(atol, rtol, seeds: int) -> Tolerances:
    tolerances = Tolerances.of(atol, rtol)  # raises on a negative or NaN tolerance
    if seeds < 0:
        raise InspectorError(f"seeds must be >= 0 (got {seeds})")
    return tolerances
