"""LoadedModel -> a checked ONNX file: torch.onnx export, graph passes, metadata, atomic write.

The file is written into a temporary folder beside the destination under the destination's own
basename (an .onnx file records its external-data file by basename), checked there, and only then
moved into place, so a failure or Ctrl-C never leaves half a file and never touches an existing one.
"""

from __future__ import annotations

import functools
import io
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# The backends load with this module: it is the export. The CLI imports inspector.export only
# inside the commands that export, so `--help` and the ONNX-only commands never load them.
import onnx
import torch
from onnxscript import ir
from torch.export import graph_signature as signature
from torch.utils import _pytree

from ..defaults import EXPORTER, EXPORTERS, GRAPH, GRAPHS, OPSET, PRECISION, PRECISIONS
from ..errors import InspectorError, option, raise_if_interrupted
from ..usermodel.devices import on_cpu
from ..usermodel.inputs import DynamicDim, Inputs, onnx_input_names, parse_dynamic_dim
from ..usermodel.outputs import named_outputs
from ..usermodel.usercode import forward_hint, token_ids_hint, user_code
from ..util import html
from ..util.files import check_name_length
from ..util.html import short_repr
from ..util.inductor import inductor_cache_removed
from ..util.leftovers import owned_folder_removed
from ..util.modes import eval_mode
from ..util.progress import step
from ..util.text import first_line, one_line
from .axes import (
    confirm_declared,
    confirm_runs,
    dynamo_shapes,
    name_symbols,
    plan_axes,
    torchscript_axes,
    trace_sizes,
)
from .naming import add_metadata, name_inputs_and_outputs
from .noise import exporter_failure, quiet
from .passes import authored_graph
from .writer import weights_detached, write_model

if TYPE_CHECKING:
    from ..loading import LoadedModel


# Past protobuf's 2 GB limit the weights must live in a separate .onnx.data file; below it a
# single file is friendlier (one thing to copy, attach, or open in Netron).
SINGLE_FILE_LIMIT = 1_800_000_000
_SMALL_INITIALIZER_BYTES = 1024  # kept in the weightless copy (shape constants)
# Below opset 9 torch.onnx keeps initializers as graph inputs (keep_initializers_as_inputs).
TORCHSCRIPT_MIN_OPSET = 9


@dataclass(frozen=True)
class ExportOptions:
    """Everything that shapes the exported file (and so the export cache's key), checked once,
    when it is made (by `make_export_options`, the one place that makes it): the commands and the
    cache pass this object down, not its fields."""

    graph: str = GRAPH
    exporter: str = EXPORTER
    opset: int = OPSET
    dynamic_batch: bool = True
    dynamic_dims: tuple = ()  # inspector.usermodel.inputs.DynamicDim
    precision: str = PRECISION  # fp32, or what export/precision.py converts the file to

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise InspectorError(
                f"{option('--precision', 'precision', self.precision)}: choose one of "
                f"{', '.join(PRECISIONS)}"
            )
        if self.graph not in GRAPHS:
            where = option("--graph", "graph", self.graph)
            raise InspectorError(f"{where}: choose one of {', '.join(GRAPHS)}")
        if self.exporter not in EXPORTERS:
            raise InspectorError(
                f"{option('--exporter', 'exporter', self.exporter)}: choose one of "
                f"{', '.join(EXPORTERS)}"
            )
        _check_opset(self.opset, self.exporter)


@dataclass
class ExportResult:
    """What `export_onnx` wrote; prints as one line plus the op counts."""

    path: Path
    graph: str
    exporter: str
    opset: int
    seconds: float
    input_names: list[str]
    output_names: list[str]
    dynamic_batch: bool
    ops: dict[str, int] = field(default_factory=dict)
    model: str = ""
    dynamic_axes: list[str] = field(default_factory=list)  # the labels of the file's inputs
    precision: str = PRECISION
    kept_float32: list[str] = field(default_factory=list)  # ops the opset has no such type for

    def __str__(self) -> str:
        labels = ", ".join(self.dynamic_axes)
        batch = f"dynamic {labels}" if labels else "static shapes"
        ops = ", ".join(f"{op} {count}" for op, count in self.ops.items()) or "none"
        precision = f", {self.precision}" if self.precision != PRECISION else ""
        return (
            f"exported {self.model or 'model'} -> {self.path} ({self.graph} graph, {self.exporter}, "
            f"opset {self.opset}{precision}, {batch}) in {self.seconds:.2f} s\n"
            f"  inputs: {', '.join(self.input_names)} | outputs: {', '.join(self.output_names)}\n"
            f"  ops: {ops}" + self._kept_line()
        )

    def _kept_line(self) -> str:
        if not self.kept_float32:
            return ""
        return (
            f"\n  kept in float32 (opset {self.opset} has no {self.precision} for them): "
            f"{', '.join(self.kept_float32)}; a later {option('--opset', 'opset')} may allow it "
            "(22 for bfloat16 Conv)"
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    def __repr__(self) -> str:
        nodes = html.counted(sum(self.ops.values()), "node")
        return short_repr(
            "ExportResult", f"{self.model or 'model'} -> {self.path}: opset {self.opset}, {nodes}"
        )

    def _repr_html_(self) -> str:
        fields = [
            ("file", self.path),
            ("graph", self.graph),
            ("exporter", self.exporter),
            ("opset", self.opset),
            ("dynamic axes", ", ".join(self.dynamic_axes) or "none (static shapes)"),
            ("inputs", ", ".join(self.input_names)),
            ("outputs", ", ".join(self.output_names)),
            ("seconds", f"{self.seconds:.2f}"),
        ]
        return html.block(
            f"exported {self.model or 'model'} -> {self.path}",
            html.table(["", ""], [[k, v] for k, v in fields]),
            html.table(["op", "count"], list(self.ops.items()), right=["count"]),
        )


def export_onnx(
    loaded: LoadedModel,
    output: str | os.PathLike[str],
    *,
    opset: int = OPSET,
    graph: str = GRAPH,
    exporter: str = EXPORTER,
    dynamic_batch: bool = True,
    dynamic_dims: Iterable[DynamicDim | str] = (),
    verbose: bool = False,
    options: ExportOptions | None = None,
    precision: str = PRECISION,
) -> ExportResult:
    """Export `loaded` (a LoadedModel) to the ONNX file `output`, check it, and describe it.

    Args:
        loaded: the model and its example inputs, from `load_model`.
        output: the .onnx file to write (atomically: an existing file is replaced only by a
            checked one).
        opset: the ONNX opset.
        graph: "authored" (one node per layer as written) or "optimized" (the exporter's fusions).
        exporter: "dynamo" or "torchscript".
        dynamic_batch: make axis 0 of every input dynamic.
        dynamic_dims: more dynamic axes, as DynamicDim or "NAME.AXIS=LABEL" strings; every
            dynamic axis is confirmed by running the written file at other sizes.
        verbose: show the exporter's own messages.
        options: all of opset, graph, exporter, dynamic_batch, dynamic_dims and precision at
            once (what the CLI and the export cache pass); those keywords are then not read.
        precision: "fp32", or "fp16", "bf16", "int8": the checked float32 file converted
            (export/precision.py), its inputs and outputs still float32.

    Returns:
        An ExportResult: the path, the input and output names, the dynamic axes and the op counts.

    Raises:
        InspectorError: the model does not export, or the file does not run as declared.
    """
    loaded = on_cpu(loaded)  # torch.onnx traces on the model's device; onnxruntime runs on the CPU
    if options is None:
        options = make_export_options(
            graph=graph,
            exporter=exporter,
            opset=opset,
            dynamic_batch=dynamic_batch,
            dynamic_dims=dynamic_dims,
            precision=precision,
        )
    graph, exporter, opset = options.graph, options.exporter, options.opset
    precision = options.precision
    dynamic_batch = options.dynamic_batch
    destination = _destination(Path(output))
    axes = plan_axes(loaded, dynamic_batch, options.dynamic_dims)
    start = time.perf_counter()
    # The staging folder comes first: an unwritable folder fails before the slow export, and a
    # Ctrl-C at any point below removes whatever was staged.
    with _staging_folder(destination) as staged:
        traced = trace_sizes(loaded, axes)
        inputs = _trace_inputs(loaded, traced)
        with (
            step(f"exporting {loaded.spec} to ONNX ({graph} graph, {exporter}, opset {opset})"),
            user_code(loaded.spec, "its forward"),
            quiet(verbose),
            eval_mode(loaded.module),
            inductor_cache_removed(),
        ):
            model, output_names = _run_exporter(loaded, inputs, options, axes, verbose)
        if output_names is None:
            output_names = _forward_output_names(loaded, inputs)
        _refuse_no_outputs(loaded, output_names)
        name_inputs_and_outputs(model, onnx_input_names(loaded.inputs), output_names)
        name_symbols(model, axes)
        add_metadata(model, loaded, inputs, graph, exporter)
        light = _weightless_proto(model)
        with step("writing and checking the ONNX file"):
            proto = _write_and_check(model, staged, light)
        weights = _large_weights(model)  # views of the model's own tensors, no copies
        del model
        _confirm_opset(proto, loaded, exporter, opset)
        confirm_declared(proto, loaded, axes, _baked_hint())
        confirm_runs(light, weights, loaded, axes, traced, _frozen_hint(exporter))
        del light, weights
        kept: list[str] = []
        if precision != PRECISION:
            proto, kept = _converted(staged, proto, loaded, traced, precision)
        _move_into_place(staged, destination)
    input_names, output_names = _io_names(proto)
    return ExportResult(
        path=destination,
        graph=graph,
        exporter=exporter,
        opset=opset,
        seconds=round(time.perf_counter() - start, 3),
        input_names=input_names,
        output_names=output_names,
        dynamic_batch=dynamic_batch,
        ops=_op_counts(proto),
        model=loaded.spec,
        dynamic_axes=_declared_axes(proto),
        precision=precision,
        kept_float32=kept,
    )


def _converted(staged: Path, proto, loaded: LoadedModel, traced: dict, precision: str):
    """The staged float32 file rewritten in `precision`; its proto without weights."""
    import onnx

    from .precision import CALIBRATION_SEEDS, convert_file

    calibration = None
    if precision == "int8":
        names = onnx_input_names(loaded.inputs)
        wanted = {value.name for value in proto.graph.input}
        calibration = []
        for seed in range(CALIBRATION_SEEDS):
            arrays = loaded.example_inputs(seed=seed, sizes=traced).arrays()
            pairs = zip(names, arrays, strict=False)
            calibration.append({name: array for name, array in pairs if name in wanted})
    kept = convert_file(staged, precision, calibration)
    return onnx.load(str(staged), load_external_data=False), kept


def make_export_options(
    *,
    graph: str = GRAPH,
    exporter: str = EXPORTER,
    opset: int = OPSET,
    dynamic_batch: bool = True,
    dynamic_dims: Iterable[DynamicDim | str] = (),
    precision: str = PRECISION,
) -> ExportOptions:
    """export_onnx's keywords (verify's, the CLI's flags) -> one checked ExportOptions.

    The one place besides tests that makes one (tests/test_structure.py counts them): every
    command and API call makes its options here once and passes the object down.
    """
    dims = tuple(
        d if isinstance(d, DynamicDim) else parse_dynamic_dim(str(d)) for d in dynamic_dims
    )
    return ExportOptions(graph, exporter, opset, dynamic_batch, dims, precision)


def default_output(loaded: LoadedModel) -> Path:
    """`<name>.onnx` in the current folder."""
    return Path(f"{file_stem(loaded)}.onnx")


def file_stem(loaded: LoadedModel) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in loaded.name).strip(".")
    return stem or "model"


def _check_opset(opset: int, exporter: str = EXPORTER) -> None:
    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise InspectorError(
            f"{option('--opset', 'opset', opset)}: onnx {onnx.__version__} knows opsets 7 to "
            f"{newest}"
        )
    if exporter == "torchscript" and opset < TORCHSCRIPT_MIN_OPSET:
        raise InspectorError(
            f"{option('--opset', 'opset', opset)}: below opset {TORCHSCRIPT_MIN_OPSET} the "
            "torchscript exporter lists every weight as a graph input too (ONNX IR 3), so the "
            f"file would take the weights as inputs; use "
            f"{option('--opset', 'opset', TORCHSCRIPT_MIN_OPSET)} or later"
        )


# --- the destination ---------------------------------------------------------------------------


def _destination(path: Path) -> Path:
    check_name_length(path, "output")
    if path.is_dir():
        raise InspectorError(
            f"output {path} is a folder; give a file name such as {path / 'model.onnx'}"
        )
    folder = path.parent
    if not folder.exists():
        raise InspectorError(f"output folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise InspectorError(f"output folder {folder} is not a folder")
    if path.suffix.lower() != ".onnx":
        raise InspectorError(f"output {path} must end in .onnx")
    return path


@contextmanager
def _staging_folder(destination: Path) -> Iterator[Path]:
    """A temporary folder beside `destination`, removed whatever happens (also on Ctrl-C)."""
    cannot = f"cannot write to folder {destination.parent}"
    with owned_folder_removed(".inspector-export-", destination.parent, cannot=cannot) as folder:
        yield folder / destination.name


def _move_into_place(staged: Path, destination: Path) -> None:
    data = staged.with_name(staged.name + ".data")
    raise_if_interrupted()  # a Ctrl-C a library swallowed: the old file stays
    try:
        if data.exists():
            os.replace(data, destination.with_name(destination.name + ".data"))
        os.replace(staged, destination)
    except OSError as error:
        raise InspectorError(f"cannot write {destination}: {error.strerror or error}") from error


# --- running the exporter ----------------------------------------------------------------------


def _trace_inputs(loaded: LoadedModel, traced: dict) -> Inputs:
    """The inputs to trace with: the ones given when their sizes suit (every dynamic axis at
    least 2, see axes.MIN_TRACE_SIZE), else seeded ones of those sizes."""
    given = loaded.given
    if given is not None and all(
        loaded.inputs[index].shape[axis] == size for (index, axis), size in traced.items()
    ):
        return given
    return loaded.example_inputs(sizes=traced) if traced else loaded.first_inputs()


def _forward_output_names(loaded: LoadedModel, inputs: Inputs) -> list[str]:
    """Run forward once on the trace inputs: its result's structure names the outputs, and its
    failure is named in the model's own terms."""
    try:
        running = user_code(loaded.spec, "its forward", failure=f"{loaded.spec} failed")
        with torch.inference_mode(), eval_mode(loaded.module), running:
            outputs = inputs.call(loaded.module)
    except InspectorError as error:
        raise _forward_failure(loaded, inputs, error) from error
    return [name for name, _ in named_outputs(outputs)]


def _program_output_names(program) -> list[str] | None:
    """The output names from torch.export's record of forward's result (no extra forward run):
    its tree of outputs, with the leaves that are no tensors (a None) left out."""
    try:
        exported = program.exported_program
        spec = exported.call_spec.out_spec
        outputs = [
            o
            for o in exported.graph_signature.output_specs
            if o.kind == signature.OutputKind.USER_OUTPUT
        ]
    except AttributeError:  # torch.onnx internals moved: run forward instead
        return None
    if spec is None or len(outputs) != spec.num_leaves:
        return None
    leaves = [
        torch.empty(0) if isinstance(o.arg, signature.TensorArgument) else None for o in outputs
    ]
    return [name for name, _ in named_outputs(_pytree.tree_unflatten(leaves, spec))]


def _refuse_no_outputs(loaded: LoadedModel, names: list[str]) -> None:
    if not names:
        raise InspectorError(
            f"{loaded.spec}: its forward returns no tensor (None, or only other values), so "
            "the ONNX graph would have no outputs; return the tensors the model computes"
        )


def _forward_failure(loaded: LoadedModel, inputs: Inputs, error: InspectorError) -> InspectorError:
    """A size fixed in the code only if the model runs at its example sizes; otherwise torch's
    reason at those sizes, with the fix when it is a dtype (float values where ids belong)."""
    reason = _reason(loaded, error)
    example = loaded.first_inputs()
    if inputs is not example:
        example_error = _run_error(loaded, example)
        if example_error is None:
            return InspectorError(
                f"{loaded.spec} runs with inputs {example.describe()} but not with "
                f"{inputs.describe()} ({reason}): a size it is traced with seems fixed in its "
                f"code; {_baked_hint()}"
            )
        inputs, reason = example, _reason(loaded, example_error)
    return InspectorError(
        f"{loaded.spec}: forward failed on inputs {inputs.describe()}: {reason}"
        f"{forward_hint(reason)}"
    )


def _reason(loaded: LoadedModel, error: InspectorError) -> str:
    return str(error).removeprefix(f"{loaded.spec} failed: ")


def _run_error(loaded: LoadedModel, inputs: Inputs) -> InspectorError | None:
    try:
        running = user_code(loaded.spec, "its forward", failure=f"{loaded.spec} failed")
        with torch.inference_mode(), eval_mode(loaded.module), running:
            inputs.call(loaded.module)
    except InspectorError as error:
        return error
    return None


def _baked_hint() -> str:
    return (
        "write x.view(x.size(0), -1) instead of a fixed batch such as x.view(32, -1), "
        f"or export with {_static_batch()} (and without that {_a_dynamic_dim()})"
    )


# The fixes as the caller would write them: flags on the command line, parameters from Python.
def _static_batch() -> str:
    return option("--static-batch", "dynamic_batch=False")


def _a_dynamic_dim() -> str:
    return option("--dynamic-dim", "dynamic_dims entry")


def _torchscript() -> str:
    return option("--exporter", "exporter", "torchscript")


_SPECIALIZED = "specialized it to be a constant"
# torch.export's words, then the TorchScript tracer's, for a class that pytree does not know
_UNKNOWN_TYPE = re.compile(
    r"Found <class '([\w.]+)'> in output, which is not a known type"
    r"|received an input of unsupported type: (\w+)"
)


def _frozen_hint(exporter: str) -> str:
    # Not "--exporter dynamo": a user on the torchscript exporter is there because dynamo failed.
    without = option("--dynamic-dim", "dynamic_dims")
    return f"export with {_static_batch()} (and without {without}) to fix the sizes"


_DATA_DEPENDENT = ("data-dependent", "data dependent", "GuardOnDataDependentSymNode")
MAX_REASON = 300  # characters of an exporter's reason in the one-line error
MAX_LINE = 399  # characters of the whole error line, hints included


def _run_exporter(loaded: LoadedModel, inputs: Inputs, options: ExportOptions, axes, verbose: bool):
    """torch.onnx.export -> an onnx_ir Model, with the passes that make the requested graph."""
    names = None
    try:
        if options.exporter == "dynamo":
            program = _dynamo_export(torch, loaded, inputs, options, axes, verbose)
            model, names = program.model, _program_output_names(program)
        else:
            model = _torchscript_export(torch, loaded, inputs, options, axes, verbose)
    except (torch.onnx.OnnxExporterError, RuntimeError, ValueError, TypeError) as error:
        _forward_output_names(loaded, inputs)  # a model that does not run is named as such
        raise _exporter_error(loaded, options, error) from error
    except NotImplementedError as error:
        raise _exporter_error(loaded, options, error) from error
    if options.graph == "authored":
        authored_graph(model, parameters=set(loaded.module.state_dict()))
    return model, names


def _exporter_error(
    loaded: LoadedModel, options: ExportOptions, error: BaseException
) -> InspectorError:
    text = str(error)
    if _SPECIALIZED in text:
        return InspectorError(
            f"{loaded.spec}: a dynamic axis (the batch, or a {_a_dynamic_dim()}) is fixed by the "
            f"model's code; {_baked_hint()}"
        )
    unknown = _UNKNOWN_TYPE.search(text)
    if unknown:
        kind = (unknown.group(1) or unknown.group(2)).rsplit(".", 1)[-1]  # not our module alias
        return InspectorError(
            f"{loaded.spec}: forward takes or returns a value of type {kind}, which the exporter "
            "cannot take apart into tensors: use tensors, tuples, lists and dicts, or register the "
            "class with torch.utils._pytree.register_pytree_node"
        )
    hint = ""
    if options.exporter == "dynamo" and any(mark in text for mark in _DATA_DEPENDENT):
        hint = (
            "; the model branches on tensor values, which torch.export cannot capture: try "
            f"{_torchscript()} (tracing freezes the branch the example inputs take)"
        )
    elif options.exporter == "dynamo" and "No ONNX function found" not in text:
        # T5's encoder fails in torch.export's decomposition (a view of symbolic strides) and
        # exports with the tracer; a missing ONNX function is missing for both exporters.
        hint = f"; {_torchscript()} may export it (check the file with inspector verify)"
    room = MAX_LINE - len("inspector: error: ") - len(f"{loaded.spec}: ") - len(hint)
    message = _shortened(exporter_failure(error), max(room, 80))
    return InspectorError(f"{loaded.spec}: {message}{hint}")


def _shortened(message: str, limit: int = MAX_REASON) -> str:
    """Exporter messages can run to thousands of characters (a guard's whole expression)."""
    message = one_line(message)
    if len(message) <= limit:
        return message
    tail = " ... (--verbose shows all of it)"
    cut = message[: limit - len(tail)].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}{tail}"


def _dynamo_export(
    torch, loaded: LoadedModel, inputs: Inputs, options: ExportOptions, axes, verbose
):
    settings = dict(
        kwargs=inputs.kwargs or None,
        opset_version=options.opset,
        optimize=options.graph == "optimized",
        dynamic_shapes=dynamo_shapes(loaded, inputs, axes),
        verbose=verbose,
    )
    reusable = _reusable_exporter(options.opset)
    if reusable is None:
        return torch.onnx.export(loaded.module, inputs.args, dynamo=True, **settings)
    core_export, registry = reusable
    return core_export(loaded.module, inputs.args, registry=registry, **settings)


@functools.lru_cache(maxsize=4)
def _reusable_exporter(opset: int):
    """torch.onnx's core export and a torchlib registry built once per process and opset.

    torch.onnx.export rebuilds that registry on every call (about 1.4 s of a 2 s export here),
    which check-all, verify and the tests pay once per model. The registry is only read during an
    export. These are torch.onnx internals: when they move, fall back to torch.onnx.export.
    """
    try:
        from torch.onnx._internal.exporter import _constants, _core, _registration

        if not _takes_keywords(_core.export, _CORE_KEYWORDS):
            return None  # torch 2.10's takes no opset_version: the public API does the work
        registry = _registration.ONNXRegistry.from_torchlib(
            opset_version=max(opset, _constants.TORCHLIB_OPSET)
        )
        return _core.export, registry
    except (ImportError, AttributeError, TypeError):
        return None


# What _dynamo_export hands torch.onnx's core export besides the module and its arguments.
_CORE_KEYWORDS = ("registry", "kwargs", "opset_version", "optimize", "dynamic_shapes", "verbose")


def _takes_keywords(function, names) -> bool:
    """Whether a private function still takes these keywords: a mismatch found here falls back to
    the public API, where the same mismatch found at the call would fail the export."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(name in parameters for name in names)


def _torchscript_export(
    torch, loaded: LoadedModel, inputs: Inputs, options: ExportOptions, axes, verbose
):
    names = onnx_input_names(loaded.inputs)
    buffer = io.BytesIO()
    # The legacy exporter takes keyword inputs as a trailing dict of its args.
    args = (*inputs.args, inputs.kwargs) if inputs.kwargs else inputs.args
    torch.onnx.export(
        loaded.module,
        args,
        buffer,
        dynamo=False,
        opset_version=options.opset,
        input_names=names,
        dynamic_axes=torchscript_axes(names, axes),
        do_constant_folding=options.graph == "optimized",
        verbose=verbose,
    )
    model = ir.serde.deserialize_model(onnx.load_from_string(buffer.getvalue()))
    if options.dynamic_batch:  # it names output axes on its own; share the batch's symbol
        for value in model.graph.outputs:
            if value.shape is not None and len(value.shape) and not isinstance(value.shape[0], int):
                value.shape = ir.Shape(["batch", *value.shape[1:]])
    return model


# --- writing and checking ----------------------------------------------------------------------


def _write_and_check(model, path: Path, light=None):
    """Check and shape-infer the graph, then write the file; return the proto that was written,
    without its initializers (the callers read its interface, opset and nodes).

    The checker and shape inference read a copy of the graph without its weights: handing them
    the whole model costs a serialization and a parse of every weight byte per call (about 60 ms
    of 16 MB for exercise_model, 8% of its export). The file is written the same way, the
    weights streamed from the model's own tensors (see writer.py): a whole-model proto would
    hold them twice more. Past the single-file limit protobuf cannot hold the model at all, so
    the weights go to a .onnx.data file and the checks through the file.
    """
    if _initializer_bytes(model) > SINGLE_FILE_LIMIT:
        return _write_and_check_by_path(model, path)
    with _checker_errors():
        inferred = _checked_and_inferred(light or _weightless_proto(model))
    with weights_detached(model) as weights:
        proto = ir.serde.serialize_model(model)
    known = {value.name for value in proto.graph.value_info}
    proto.graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in known)
    del proto.graph.output[:]
    proto.graph.output.extend(inferred.graph.output)
    try:
        write_model(proto, weights, path)
    except OSError as error:
        raise InspectorError(f"cannot write {path.name}: {error.strerror or error}") from error
    return proto


def _write_and_check_by_path(model, path: Path):
    try:
        ir.save(model, path, external_data=path.name + ".data")
        with _checker_errors():
            onnx.shape_inference.infer_shapes_path(str(path), str(path), data_prop=True)
            onnx.checker.check_model(str(path), full_check=True)
    except OSError as error:
        raise InspectorError(f"cannot write {path.name}: {error.strerror or error}") from error
    return onnx.load(str(path), load_external_data=False)


def _checked_and_inferred(proto):
    """The checker's structural check, then strict shape inference (what `full_check` adds)."""
    onnx.checker.check_model(proto)
    return onnx.shape_inference.infer_shapes(
        proto, check_type=True, strict_mode=True, data_prop=True
    )


@contextmanager
def _checker_errors() -> Iterator[None]:
    try:
        yield
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        reason = first_line(error)
        raise InspectorError(
            f"the exported file fails the ONNX checker: {reason}{_float_indices_hint(reason)}"
        ) from error


def _float_indices_hint(reason: str) -> str:
    """Where torch lets float token ids through (torch 2.11 with some transformers releases), the
    checker is the first to refuse them, as a Gather whose indices are floats."""
    if "Gather" in reason and re.search(r"tensor\((float|double|bfloat16|float16)\)", reason):
        return token_ids_hint()
    return ""


def _weightless_proto(model):
    """The model as a proto whose large initializers are typed graph inputs instead.

    Small initializers stay: shape inference reads their values (a Reshape's target shape).
    The IR model is left as it was.
    """
    graph = model.graph
    initializers = list(graph.initializers.values())
    inputs_before = len(graph.inputs)
    weights = {}
    for value in initializers:
        tensor = value.const_value
        if tensor is None or tensor.nbytes <= _SMALL_INITIALIZER_BYTES:
            continue
        weights[value] = tensor
        value.shape, value.dtype = value.shape or tensor.shape, value.dtype or tensor.dtype
        graph.initializers.pop(value.name)
        value.const_value = None
        if value not in graph.inputs:
            graph.inputs.append(value)
    try:
        return ir.serde.serialize_model(model)
    finally:
        del graph.inputs[inputs_before:]
        for value, tensor in weights.items():
            value.const_value = tensor
        graph.initializers.clear()  # back in their order, for a file that does not change
        for value in initializers:
            graph.register_initializer(value)


def _large_weights(model) -> dict:
    """name -> array of each initializer that _weightless_proto made a graph input: what a run of
    that light graph is fed, straight from the tensors' memory.

    The dynamo exporter's initializers wrap the model's own tensors, so these are views of them
    (tests/test_graph_passes.py holds it to that). A torchscript export's live in the proto it was
    read from, whose bytes protobuf hands out as a copy.
    """
    return {
        value.name: value.const_value.numpy()
        for value in model.graph.initializers.values()
        if value.const_value is not None and value.const_value.nbytes > _SMALL_INITIALIZER_BYTES
    }


def _initializer_bytes(model) -> int:
    return sum(
        value.const_value.nbytes
        for value in model.graph.initializers.values()
        if value.const_value is not None
    )


def _io_names(proto) -> tuple[list[str], list[str]]:
    return [v.name for v in proto.graph.input], [v.name for v in proto.graph.output]


def _confirm_opset(proto, loaded: LoadedModel, exporter: str, opset: int) -> None:
    """The dynamo exporter falls back to its own opset when it cannot convert: do not hide that."""
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    if written != opset:
        raise InspectorError(
            f"{loaded.spec}: the {exporter} exporter cannot write opset {opset} "
            f"for this model (its graph stayed at opset {written}); choose "
            f"another {option('--opset', 'opset')}, e.g. {written}"
        )


def _declared_axes(proto) -> list[str]:
    labels = []
    for value in proto.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param and dim.dim_param not in labels:
                labels.append(dim.dim_param)
    return labels


def _op_counts(proto) -> dict[str, int]:
    return dict(Counter(node.op_type for node in proto.graph.node).most_common())
