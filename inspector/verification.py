"""Prove that onnxruntime computes what PyTorch computes, on the same seeded random inputs.

The comparison itself (the mismatch rule and its statistics) is `inspector.onnx.compare`; this
module runs the PyTorch side. A VerifyReport is truthy only when nothing mismatched, so
`assert inspector.verify(model, x)` is a real test, and the CLI exits 1 on any mismatch.
"""

from __future__ import annotations

from .defaults import ATOL, GRAPH, RTOL, SEEDS
from .errors import InspectorError
from .modes import eval_mode
from .onnx.compare import compare_outputs, largest_value, scale_warnings
from .onnx.files import check_onnx_file
from .onnx.golden import batch_of
from .onnx.report import Run, VerifyReport
from .onnx.runtime import feeds, open_session, output_names, run_session
from .onnx.testdata import DataSet, write_test_data
from .text import one_line
from .usercode import user_code


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
    names = output_names(session)
    diffs, notes = compare_outputs(names, expected, actual, atol=atol, rtol=rtol)
    run = Run(seed, batch_of(arrays), diffs, notes=notes)
    if not keep:
        return run, None, largest_value(expected)
    input_names = [spec.name for spec in session.get_inputs()]
    return run, DataSet("", arrays, expected, input_names, names), largest_value(expected)


def verify(
    model,
    *example_inputs,
    onnx=None,
    graph: str = GRAPH,
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
    from .export.cache import exported_model

    with eval_mode(loaded.module), exported_model(loaded, graph=graph, use_cache=use_cache) as path:
        report = verify_onnx(loaded, path, **options)
    if not path.exists():  # a temporary export, gone now: say what it was instead
        report.onnx_file = f"temporary export, {graph} graph"
    return report


def torch_outputs(loaded, inputs) -> list:
    """PyTorch's outputs as numpy arrays, in the exporter's (pytree) order."""
    import torch
    from torch.utils import _pytree

    try:
        with user_code(loaded.spec, "its forward"), torch.inference_mode():
            outputs = loaded.module(*inputs)
    except (RuntimeError, ValueError, TypeError) as error:
        shapes = ", ".join(str(list(t.shape)) for t in inputs)
        raise InspectorError(
            f"{loaded.spec}: forward failed on input shape {shapes}: {one_line(error)}"
        ) from error
    leaves = _pytree.tree_leaves(outputs)
    return [leaf.detach().cpu().numpy() for leaf in leaves if isinstance(leaf, torch.Tensor)]


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
