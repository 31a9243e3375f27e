"""LoadedModel -> a checked ONNX file: torch.onnx export, graph passes, metadata, atomic write.

The file is written into a temporary folder beside the destination under the destination's own
basename (an .onnx file records its external-data file by basename), checked there, and only then
moved into place, so a failure or Ctrl-C never leaves half a file and never touches an existing one.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..defaults import EXPORTER, EXPORTERS, GRAPH, GRAPHS, OPSET
from ..errors import InspectorError
from ..modes import eval_mode
from ..text import first_line
from .noise import exporter_failure, quiet

# Past protobuf's 2 GB limit the weights must live in a separate .onnx.data file; below it a
# single file is friendlier (one thing to copy, attach, or open in Netron).
SINGLE_FILE_LIMIT = 1_800_000_000
_SMALL_INITIALIZER_BYTES = 1024  # kept in the weightless copy (shape constants)
MIN_TRACE_BATCH = 2  # with batch 1 torch.export may specialize the batch axis (pytorch #148629)


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

    def __str__(self) -> str:
        batch = "dynamic batch" if self.dynamic_batch else "static batch"
        ops = ", ".join(f"{op} {count}" for op, count in self.ops.items()) or "none"
        return (
            f"exported {self.model or 'model'} -> {self.path} ({self.graph} graph, {self.exporter}, "
            f"opset {self.opset}, {batch}) in {self.seconds:.2f} s\n"
            f"  inputs: {', '.join(self.input_names)} | outputs: {', '.join(self.output_names)}\n"
            f"  ops: {ops}"
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def export_onnx(
    loaded,
    output,
    *,
    opset: int = OPSET,
    graph: str = GRAPH,
    exporter: str = EXPORTER,
    dynamic_batch: bool = True,
    verbose: bool = False,
) -> ExportResult:
    """Export `loaded` (a LoadedModel) to the ONNX file `output`, check it, and describe it."""
    if graph not in GRAPHS:
        raise InspectorError(f"--graph {graph!r}: choose one of {', '.join(GRAPHS)}")
    if exporter not in EXPORTERS:
        raise InspectorError(f"--exporter {exporter!r}: choose one of {', '.join(EXPORTERS)}")
    _check_opset(opset)
    destination = _destination(Path(output))
    start = time.perf_counter()
    # The staging folder comes first: an unwritable folder fails before the slow export, and a
    # Ctrl-C at any point below removes whatever was staged.
    with _staging_folder(destination) as staged:
        inputs = _trace_inputs(loaded, dynamic_batch)
        with quiet(verbose), eval_mode(loaded.module), _inductor_cache_in(staged.parent):
            model = _run_exporter(loaded, inputs, opset, graph, exporter, dynamic_batch, verbose)
        _name_inputs_and_outputs(model)
        if dynamic_batch:
            _name_batch_axis(model)
        _add_metadata(model, loaded, inputs, graph, exporter)
        proto = _write_and_check(model, staged)
        _confirm_opset(proto, loaded, exporter, opset)
        if dynamic_batch:
            _confirm_dynamic_batch(proto, loaded)
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
    )


def default_output(loaded) -> Path:
    """`<name>.onnx` in the current folder."""
    return Path(f"{file_stem(loaded)}.onnx")


def file_stem(loaded) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in loaded.name).strip(".")
    return stem or "model"


def _check_opset(opset: int) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise InspectorError(f"--opset {opset}: onnx {onnx.__version__} knows opsets 7 to {newest}")


# --- the destination ---------------------------------------------------------------------------


def _destination(path: Path) -> Path:
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
    try:
        folder = Path(tempfile.mkdtemp(prefix=".inspector-export-", dir=destination.parent))
    except OSError as error:
        raise InspectorError(
            f"cannot write to folder {destination.parent}: {error.strerror or error}"
        ) from error
    try:
        yield folder / destination.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _inductor_cache_in(folder: Path) -> Iterator[None]:
    """torch.export creates torch._inductor's cache folder ($TMPDIR/torchinductor_<user>, empty)
    and leaves it behind; unless the user chose one, point it into the staging folder."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder / "inductor")
    try:
        yield
    finally:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)


def _move_into_place(staged: Path, destination: Path) -> None:
    data = staged.with_name(staged.name + ".data")
    try:
        if data.exists():
            os.replace(data, destination.with_name(destination.name + ".data"))
        os.replace(staged, destination)
    except OSError as error:
        raise InspectorError(f"cannot write {destination}: {error.strerror or error}") from error


# --- running the exporter ----------------------------------------------------------------------


def _trace_inputs(loaded, dynamic_batch: bool):
    """Example inputs to trace with; a dynamic batch needs a batch of at least 2."""
    batch = loaded.input_shapes[0][0] if loaded.input_shapes[0] else 1
    if dynamic_batch and batch < MIN_TRACE_BATCH:
        return loaded.example_inputs(batch_size=MIN_TRACE_BATCH)
    return loaded.example_inputs()


def _explain_failure_at_trace_batch(loaded, inputs) -> None:
    """After a failed export: if the model does not even run at the batch we traced with (and that
    is not its example batch), its batch is baked into its code; say that instead."""
    import torch

    batch = inputs[0].shape[0] if inputs and inputs[0].dim() else None
    if batch is None or (loaded.input_shapes[0] or (None,))[0] == batch:
        return
    try:
        with torch.no_grad():
            loaded.module(*inputs)
    except Exception as error:  # the model's own code failing at another batch size
        first = first_line(error)
        raise InspectorError(
            f"{loaded.spec} does not run with batch size {batch} ({first}): its "
            f"batch dimension (axis 0) seems fixed in its code; {_BAKED_HINT}"
        ) from error


_BAKED_HINT = (
    "write x.view(x.size(0), -1) instead of a fixed batch such as x.view(32, -1), "
    "or export with --static-batch"
)


_SPECIALIZED = "specialized it to be a constant"


def _run_exporter(loaded, inputs, opset, graph, exporter, dynamic_batch, verbose):
    """torch.onnx.export -> an onnx_ir Model, with the passes that make the requested graph."""
    import torch

    try:
        if exporter == "dynamo":
            model = _dynamo_export(
                torch, loaded.module, inputs, opset, graph, dynamic_batch, verbose
            )
        else:
            model = _torchscript_export(
                torch, loaded.module, inputs, opset, graph, dynamic_batch, verbose
            )
    except torch.onnx.OnnxExporterError as error:
        if _SPECIALIZED in str(error):
            raise InspectorError(
                f"{loaded.spec}: the batch dimension (axis 0) is fixed by the "
                f"model's code; {_BAKED_HINT}"
            ) from error
        _explain_failure_at_trace_batch(loaded, inputs)
        raise InspectorError(f"{loaded.spec}: {exporter_failure(error)}") from error
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as error:
        _explain_failure_at_trace_batch(loaded, inputs)
        raise InspectorError(f"{loaded.spec}: {exporter_failure(error)}") from error
    if graph == "authored":
        from .passes import authored_graph

        authored_graph(model, parameters=set(loaded.module.state_dict()))
    return model


def _dynamo_export(torch, module, inputs, opset, graph, dynamic_batch, verbose):
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch")
        dynamic_shapes = tuple({0: batch} if x.dim() else None for x in inputs)
    options = dict(
        opset_version=opset,
        optimize=graph == "optimized",
        dynamic_shapes=dynamic_shapes,
        verbose=verbose,
    )
    reusable = _reusable_exporter(opset)
    if reusable is None:
        return torch.onnx.export(module, inputs, dynamo=True, **options).model
    core_export, registry = reusable
    return core_export(module, inputs, registry=registry, **options).model


@functools.lru_cache(maxsize=4)
def _reusable_exporter(opset: int):
    """torch.onnx's core export and a torchlib registry built once per process and opset.

    torch.onnx.export rebuilds that registry on every call (about 1.4 s of a 2 s export here),
    which check-all, verify and the tests pay once per model. The registry is only read during an
    export. These are torch.onnx internals: when they move, fall back to torch.onnx.export.
    """
    try:
        from torch.onnx._internal.exporter import _constants, _core, _registration

        registry = _registration.ONNXRegistry.from_torchlib(
            opset_version=max(opset, _constants.TORCHLIB_OPSET)
        )
        return _core.export, registry
    except (ImportError, AttributeError, TypeError):
        return None


def _torchscript_export(torch, module, inputs, opset, graph, dynamic_batch, verbose):
    import io

    import onnx
    from onnxscript import ir

    names = [f"input_{i}" for i in range(len(inputs))]
    buffer = io.BytesIO()
    axes = (
        {name: {0: "batch"} for name, x in zip(names, inputs, strict=True) if x.dim()}
        if dynamic_batch
        else None
    )
    torch.onnx.export(
        module,
        inputs,
        buffer,
        dynamo=False,
        opset_version=opset,
        input_names=names,
        dynamic_axes=axes,
        do_constant_folding=graph == "optimized",
        verbose=verbose,
    )
    model = ir.serde.deserialize_model(onnx.load_from_string(buffer.getvalue()))
    if dynamic_batch:  # torchscript leaves output batch axes to its own naming; share one symbol
        for value in model.graph.outputs:
            if value.shape is not None and len(value.shape) and not isinstance(value.shape[0], int):
                value.shape = ir.Shape(["batch", *value.shape[1:]])
    return model


# --- names and metadata ------------------------------------------------------------------------


def _name_batch_axis(model) -> None:
    """Call the traced batch symbol `batch` on every edge, as Netron then labels it.

    The exporter names it after its internal symbol (e.g. `s77`), which means nothing to a reader.
    """
    from onnxscript import ir

    first = next((v for v in model.graph.inputs if v.shape is not None and len(v.shape)), None)
    symbol = first.shape[0] if first is not None else None
    if not isinstance(symbol, ir.SymbolicDim) or symbol.value in (None, "batch"):
        return
    for value in _all_values(model.graph):
        if value.shape is not None and any(dim == symbol.value for dim in value.shape):
            value.shape = ir.Shape(["batch" if dim == symbol.value else dim for dim in value.shape])


def _all_values(graph):
    yield from graph.inputs
    for node in graph.all_nodes():
        yield from node.outputs


def _name_inputs_and_outputs(model) -> None:
    """`input`/`output`, or `input_0`, `input_1`, ... when there are several."""
    import onnx_ir.passes.common as common_passes

    common_passes.OutputFixPass()(model)  # an output that is an input gets its own Identity node
    graph = model.graph
    wanted = {**_numbered(graph.inputs, "input"), **_numbered(graph.outputs, "output")}
    taken = set(wanted.values())
    for node in graph:
        for value in node.outputs:
            if value.name in taken and value not in wanted:
                value.name = f"{value.name}__inner"
    for name, initializer in list(graph.initializers.items()):
        if name in taken:
            graph.initializers.pop(name)
            initializer.name = f"{name}__inner"
            graph.register_initializer(initializer)
    for value, name in wanted.items():
        value.name = name


def _numbered(values, base: str) -> dict:
    if len(values) == 1:
        return {values[0]: base}
    return {value: f"{base}_{i}" for i, value in enumerate(values)}


def _add_metadata(model, loaded, inputs, graph: str, exporter: str) -> None:
    import torch

    params = {id(p): p.numel() for p in loaded.module.parameters()}
    model.metadata_props.update(
        {
            "inspector.model": loaded.spec,
            "inspector.parameters": str(sum(params.values())),
            "inspector.input_shapes": ";".join(
                ",".join(map(str, shape)) for shape in loaded.input_shapes
            ),
            "inspector.trace_shapes": ";".join(",".join(map(str, x.shape)) for x in inputs),
            "inspector.graph": graph,
            "inspector.exporter": exporter,
            "inspector.version": __version__,
            "torch.version": torch.__version__,
        }
    )
    model.producer_name = "inspector"
    model.producer_version = __version__


# --- writing and checking ----------------------------------------------------------------------


def _write_and_check(model, path: Path):
    """Check and shape-infer the graph, then write the file; return the proto that was written,
    without its initializers (the callers read its interface, opset and nodes).

    The checker and shape inference read a copy of the graph without its weights: handing them
    the whole model costs a serialization and a parse of every weight byte per call (about 60 ms
    of 16 MB for exercise_model, 8% of its export). The file is written the same way, the
    weights streamed from the model's own tensors (see writer.py): a whole-model proto would
    hold them twice more. Past the single-file limit protobuf cannot hold the model at all, so
    the weights go to a .onnx.data file and the checks through the file.
    """
    from onnxscript import ir

    from .writer import weights_detached, write_model

    if _initializer_bytes(model) > SINGLE_FILE_LIMIT:
        return _write_and_check_by_path(model, path)
    with _checker_errors():
        inferred = _checked_and_inferred(_weightless_proto(model))
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
    import onnx
    from onnxscript import ir

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
    import onnx

    onnx.checker.check_model(proto)
    return onnx.shape_inference.infer_shapes(
        proto, check_type=True, strict_mode=True, data_prop=True
    )


@contextmanager
def _checker_errors() -> Iterator[None]:
    import onnx

    try:
        yield
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise InspectorError(
            f"the exported file fails the ONNX checker: {first_line(error)}"
        ) from error


def _weightless_proto(model):
    """The model as a proto whose large initializers are typed graph inputs instead.

    Small initializers stay: shape inference reads their values (a Reshape's target shape).
    The IR model is left as it was.
    """
    from onnxscript import ir

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


def _initializer_bytes(model) -> int:
    return sum(
        value.const_value.nbytes
        for value in model.graph.initializers.values()
        if value.const_value is not None
    )


def _io_names(proto) -> tuple[list[str], list[str]]:
    return [v.name for v in proto.graph.input], [v.name for v in proto.graph.output]


def _confirm_opset(proto, loaded, exporter: str, opset: int) -> None:
    """The dynamo exporter falls back to its own opset when it cannot convert: do not hide that."""
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    if written != opset:
        raise InspectorError(
            f"{loaded.spec}: the {exporter} exporter cannot write opset {opset} "
            f"for this model (its graph stayed at opset {written}); choose "
            f"another --opset, e.g. {written}"
        )


def _confirm_dynamic_batch(proto, loaded) -> None:
    """Axis 0 of every input and output must be symbolic in the file, not a fixed number."""
    for kind, values in (("input", proto.graph.input), ("output", proto.graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            if dims and not dims[0].dim_param:
                fixed = dims[0].dim_value if dims[0].HasField("dim_value") else "unknown"
                raise InspectorError(
                    f"{loaded.spec} bakes its batch size into the graph: axis 0 "
                    f"of {kind} {value.name!r} came out fixed at {fixed} instead "
                    f"of dynamic; {_BAKED_HINT}"
                )


def _op_counts(proto) -> dict[str, int]:
    return dict(Counter(node.op_type for node in proto.graph.node).most_common())
