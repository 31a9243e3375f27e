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
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..defaults import EXPORTER, GRAPH, OPSET, PRECISION, SEEDS
from ..errors import InspectorError, option
from ..onnx.compare import blind_reason, compare_outputs
from ..onnx.files import check_onnx_file
from ..onnx.golden import batch_of
from ..onnx.precision import element_type, file_precision
from ..onnx.report import Run, VerifyReport, nonfinite_warnings
from ..onnx.repro import check_repro_request
from ..onnx.runtime import feeds, open_session, output_names, run_session
from ..onnx.testdata import DataSet, write_test_data
from ..onnx.tolerances import Tolerances
from ..usermodel.devices import on_cpu
from ..usermodel.inputs import Inputs, to_numpy
from ..usermodel.outputs import named_outputs
from ..usermodel.usercode import forward_hint, user_code
from ..util.inductor import inductor_cache_removed
from ..util.modes import eval_mode
from ..util.progress import step
from ..util.text import first_line

if TYPE_CHECKING:
    from torch import nn

    from ..export.exporter import ExportOptions
    from ..loading import LoadedModel
    from ..usermodel.inputs import DynamicDim


@inductor_cache_removed()  # torch._dynamo, imported on the way, makes torch's cache folder
def verify(
    model: nn.Module | LoadedModel | str,
    *args: Any,
    onnx: str | os.PathLike[str] | None = None,
    graph: str = GRAPH,
    exporter: str = EXPORTER,
    opset: int = OPSET,
    dynamic_batch: bool = True,
    dynamic_dims: Iterable[DynamicDim | str] = (),
    atol: float | Mapping[str, float] | None = None,
    rtol: float | Mapping[str, float] | None = None,
    seeds: int = SEEDS,
    batch_sizes: Sequence[int] | None = None,
    localize: bool = False,
    repro: str | os.PathLike[str] | None = None,
    save_data: str | os.PathLike[str] | None = None,
    use_cache: bool = False,
    export_options: ExportOptions | None = None,
    precision: str = PRECISION,
    budget: dict | None = None,
    metrics: Sequence[str] = (),
    ort_opt: str = "all",
    draw: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> VerifyReport:
    """Export `model` (or take `onnx=`) and compare onnxruntime with PyTorch: truthy when it passed.

    `model` is an nn.Module called as `model(*args, **kwargs)` (tensors keep their dtypes:
    int64 token ids stay int64), a LoadedModel, or a MODEL spec string. The inputs given are one
    run; seeded inputs of the same dtypes and value ranges, over `seeds` seeds and `batch_sizes`
    (default: 1 and another size), are the others. graph, exporter, opset, dynamic_batch and
    dynamic_dims are export_onnx's options, and precision (fp16, bf16, int8: the file is judged
    against the float32 model with that precision's defaults, defaults.PRECISION_TOLERANCES).
    `atol` and `rtol` are numbers, or {output name: number} dicts for the outputs that need their
    own (the others keep the defaults; None: the file precision's). `budget` ({"cosine": 0.999,
    "sqnr": 30, ...}) fails outputs whose figures fall short; `metrics` ("topk=5", "cosine") adds
    task figures; `ort_opt` is onnxruntime's optimization level (disable, basic, all); `draw` (a
    .svg/.png path, with localize) draws the file coloured by each module's divergence. With `localize`,
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
        export_options: graph, exporter, opset, dynamic_batch, dynamic_dims and precision at
            once (what the CLI passes); those keywords are then not read.
        precision: "fp32", "fp16", "bf16" or "int8": export_onnx's option; the file is judged
            with that precision's default tolerances (and int8 by a budget).
        budget: {"cosine": 0.999, "sqnr": 30, ...}: floors an output's figures must reach.
        metrics: task figures to measure per output: "topk=K", "cosine".
        ort_opt: onnxruntime's graph optimization level: "disable", "basic" or "all".
        draw: with `localize`, a .svg/.png path for the file coloured by each module's divergence.
        **kwargs: the module's keyword example inputs.

    Returns:
        A VerifyReport, truthy when no output mismatched; it prints PASSED/FAILED and a table.

    Raises:
        InspectorError: the model does not load, export or run, or an argument is wrong.
    """
    from ..loading import as_loaded

    loaded = on_cpu(as_loaded(model, args, kwargs, caller="verify"))  # a CUDA model: a CPU copy
    tolerances = _check_tolerances(atol, rtol, seeds)
    check_repro_request(repro, localize)
    checks: dict[str, Any] = dict(
        # parsed once; the ones not given follow the precision of the file verify_onnx reads
        atol=tolerances,
        seeds=seeds,
        batch_sizes=batch_sizes,
        save_data=save_data,
        localize=localize,
        repro=repro,
        budget=budget,
        metrics=metrics,
        ort_opt=ort_opt,
        draw=draw,
    )
    if onnx is not None:
        return verify_onnx(loaded, onnx, **checks)
    from ..export.cache import exported_model
    from ..export.exporter import make_export_options

    options = export_options or make_export_options(
        graph=graph,
        exporter=exporter,
        opset=opset,
        dynamic_batch=dynamic_batch,
        dynamic_dims=dynamic_dims,
        precision=precision,
    )
    with (
        eval_mode(loaded.module),
        exported_model(loaded, options=options, use_cache=use_cache) as path,
    ):
        report = verify_onnx(loaded, path, **checks)
    # The export verify made itself: named for what it is, not by its file (the cache's is a hash).
    kind = f"{'cached' if path.exists() else 'temporary'} export, {options.graph} graph"
    report.onnx_file = kind + (f", {options.precision}" if options.precision != PRECISION else "")
    return report


@inductor_cache_removed()  # torch._dynamo, imported on the way, makes torch's cache folder
def verify_onnx(
    loaded: LoadedModel,
    onnx_path,
    *,
    atol: float | Mapping[str, float] | Tolerances | None = None,
    rtol: float | Mapping[str, float] | None = None,
    seeds: int = SEEDS,
    batch_sizes=None,
    save_data=None,
    localize: bool = False,
    repro=None,
    budget: dict | None = None,
    metrics: Sequence[str] = (),
    ort_opt: str = "all",
    draw: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Run a LoadedModel in PyTorch and its ONNX file in onnxruntime on the same inputs.

    When an output cannot tell a right export from a wrong one (constant, or below 10 x atol),
    every module's output is compared as well, and the verdict rests on them too. A file in
    fp16, bf16 or int8 (inspector.onnx.precision) is judged with that precision's defaults,
    and an fp16/bf16 one is also compared with PyTorch run in that dtype (for information).
    """
    check_repro_request(repro, localize)
    loaded = on_cpu(loaded)  # PyTorch's side runs where onnxruntime does
    with step("checking the ONNX file and opening it in onnxruntime"):
        path = check_onnx_file(onnx_path)
        precision = file_precision(path)
        tolerances = Tolerances.of(atol, rtol, precision).judging(precision, budget, metrics)
        session = open_session(path, path.name, optimization=ort_opt)
    tolerances.check_names(output_names(session), loaded.spec)
    cases = input_cases(loaded, session, seeds, batch_sizes)
    report = VerifyReport(
        loaded.spec,
        str(path),
        tolerances.atol,
        tolerances.rtol,
        localized=localize,
        tolerances=tolerances if tolerances.to_dict() or tolerances.budget else None,
        precision=precision,
    )
    keep = save_data is not None
    with eval_mode(loaded.module), same_dtype_model(loaded, precision, report) as twin:
        results = []
        for number, case in enumerate(cases, 1):
            with step(
                f"input set {number} of {len(cases)}: running PyTorch and onnxruntime, comparing"
            ):
                results.append(_run_case(loaded, session, path.name, case, tolerances, keep, twin))
        report.runs = [result.run for result in results]
        if twin is not None:
            report.same_dtype_runs = [r.same_dtype for r in results if r.same_dtype is not None]
        report.warnings += nonfinite_warnings(report.runs, "PyTorch")
        report.warnings += loose_tolerance_warnings(tolerances, report.runs)
        if not report.passed:
            report.warnings += other_level_check(loaded, path, ort_opt, cases, results, tolerances)
        blind = blind_outputs(results)
        if blind or localize:
            from .localize import compare_modules

            del session  # its weights: module outputs are compared in sessions of their own

            inputs, label = _module_inputs(cases, report.runs)
            with step("comparing every module's output in PyTorch and onnxruntime"):
                compare_modules(report, loaded, path, inputs, label, blind=blind, repro=repro)
        if draw is not None and report.intermediates is not None:
            from ..netron.error_drawing import draw_divergence

            with step(f"drawing the module outputs' divergence into {draw}"):
                report.drawing = draw_divergence(report.intermediates, path, draw)
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
        self.same_dtype: Run | None = None  # onnxruntime against PyTorch in the file's dtype


def _run_case(
    loaded: LoadedModel, session, label, case: Case, tolerances, keep: bool, twin=None
) -> CaseResult:
    """One set of inputs through both runtimes (and through `twin`, PyTorch in the file's dtype)."""
    arrays = case.inputs.arrays()
    expected = torch_outputs(loaded, case.inputs)
    actual = run_session(session, feeds(session, arrays, label), label)
    names = output_names(session)
    diffs, notes = compare_outputs(names, expected, actual, tolerances=tolerances)
    other_sizes = {k: v for k, v in case.sizes.items() if k != "batch"}
    run = Run(case.seed, batch_of(arrays), diffs, notes=notes, sizes=other_sizes)
    result = _case_result(run, names, expected, case, tolerances, keep, arrays, session)
    if twin is not None:
        twin_expected = twin.outputs(case.inputs)
        twin_diffs, twin_notes = compare_outputs(
            names, twin_expected, actual, tolerances=tolerances
        )
        result.same_dtype = replace(run, outputs=twin_diffs, notes=twin_notes)
    return result


def _case_result(run, names, expected, case, tolerances, keep, arrays, session) -> CaseResult:
    pairs = list(zip(names, expected, strict=False))
    blind = {name: blind_reason(array, tolerances.for_output(name)[0]) for name, array in pairs}
    digests = {name: _digest(array, case.seed) for name, array in pairs}
    if not keep:
        return CaseResult(run, blind, digests, None)
    input_names = [spec.name for spec in session.get_inputs()]
    return CaseResult(run, blind, digests, DataSet("", arrays, expected, input_names, names))


class SameDtypeModel:
    """A copy of the model in float16 or bfloat16, run on the CPU with its float inputs cast:
    what PyTorch itself computes in the file's precision, outputs back in float32."""

    def __init__(self, loaded: LoadedModel, module, dtype):
        self.loaded, self.module, self.dtype = loaded, module, dtype

    def outputs(self, inputs: Inputs) -> list:
        import numpy as np
        import torch

        def cast(value):
            return (
                value.to(self.dtype)
                if torch.is_tensor(value) and value.is_floating_point()
                else value
            )

        half = type(inputs)(
            tuple(cast(v) for v in inputs.args), {k: cast(v) for k, v in inputs.kwargs.items()}
        )
        with torch.inference_mode():
            outputs = half.call(self.module)
        arrays = []
        for _, tensor in named_outputs(outputs):
            floating = tensor.is_floating_point()
            arrays.append(to_numpy(tensor.float() if floating else tensor))
        return [np.asarray(a) for a in arrays]


@contextmanager
def same_dtype_model(loaded: LoadedModel, precision: str, report: VerifyReport):
    """Yield a SameDtypeModel for an fp16/bf16 file, or None (fp32, int8, or a model PyTorch
    cannot run in that dtype on the CPU: a warning says why)."""
    import copy

    import torch

    if precision not in ("fp16", "bf16"):
        yield None
        return
    dtype = getattr(torch, element_type(precision))
    try:
        module = copy.deepcopy(loaded.module).to(dtype).eval()
        twin = SameDtypeModel(loaded, module, dtype)
        twin.outputs(loaded.first_inputs())  # one run: an op without a CPU kernel shows here
    except Exception as error:  # the user's forward in another dtype: any failure is theirs
        report.warnings.append(
            f"PyTorch cannot run {loaded.spec} in {element_type(precision)} on the CPU "
            f"({first_line(error)[:200]}): the file is compared with float32 PyTorch only"
        )
        yield None
        return
    report.same_dtype = element_type(precision)
    try:
        yield twin
    finally:
        del module


def loose_tolerance_warnings(tolerances: Tolerances, runs: list[Run]) -> list[str]:
    """An --atol NAME=V is honoured as given; say so when it is loose for the output's scale
    (an error as large as a tenth of its largest value would pass)."""
    from ..onnx.compare import SMALL

    warnings = []
    for name, atol in tolerances.atol_by_output.items():
        peaks = [d.peak for run in runs for d in run.outputs if d.name == name and d.peak]
        if peaks and max(peaks) < SMALL * atol:
            warnings.append(
                f"{option(f'--atol {name}={atol:g}', f'atol={{{name!r}: {atol:g}}}')} is loose "
                f"for {name}, whose values stay under "
                f"{max(peaks):.2g}: an error of a tenth of its largest value would pass"
            )
    return warnings


def other_level_check(loaded, path, level: str, cases, results, tolerances) -> list[str]:
    """A failure at one onnxruntime optimization level: rerun the failing cases at another
    (disable, or all when it was disable). A pass there puts the blame on onnxruntime."""
    other = "all" if level == "disable" else "disable"
    failing = [case for case, result in zip(cases, results, strict=True) if not result.run]
    if not failing:
        return []
    session = open_session(path, path.name, optimization=other)
    for case in failing:
        arrays = case.inputs.arrays()
        actual = run_session(session, feeds(session, arrays, path.name), path.name)
        expected = torch_outputs(loaded, case.inputs)
        diffs, notes = compare_outputs(
            output_names(session), expected, actual, tolerances=tolerances
        )
        if not all(diffs) or notes:
            return []
    passes = option(f"--ort-opt {other}", f"ort_opt={other!r}")
    if other == "disable":
        return [
            f"passes with {passes}: an onnxruntime optimization (level {level}) changes the result"
        ]
    failing_level = option(f"--ort-opt {level}", f"ort_opt={level!r}")
    return [f"passes with {passes}: the mismatch appears only with {failing_level}"]


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
