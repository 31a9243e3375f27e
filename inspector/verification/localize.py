"""Compare every module's output in PyTorch and onnxruntime, and find the root cause of a mismatch.

PyTorch side: hooks on every submodule record the tensors it received and the first tensor it
returned, in the order the modules finish (a layer before the block that contains it). ONNX side:
torch.onnx records which module each node came from (onnx/scopes.py), so a module's input and
output values are those crossing the boundary of its nodes (onnx/module_values.py); they become
extra graph outputs and one onnxruntime run gives them all.

The root cause is the module whose output diverges while its inputs still agree: not the first
divergence in execution order when the fault sits in a parent's own code between its submodules.
This is how verify proves an export whose outputs cannot discriminate (a zero-initialized head),
and what --localize reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InspectorError
from ..onnx.compare import OutputDiff, compare_arrays
from ..onnx.module_values import ModuleValues, module_values
from ..onnx.report import describe_failure
from ..onnx.runtime import feeds, open_session, run_session
from ..onnx.scopes import node_module
from ..usermodel.inputs import to_numpy
from ..usermodel.usercode import user_code

if TYPE_CHECKING:
    from ..loading import LoadedModel


WHOLE_MODEL = "(whole model)"  # the name --localize gives the top module
MAX_NODES_SHOWN = 4
MAX_DIVERGING_SHOWN = 6
_MAX_PROTO_BYTES = 2**31 - 1  # protobuf cannot serialize more; onnxruntime would need a file


@dataclass(frozen=True)
class Divergence:
    """The root cause: a module whose output is out of tolerance while its inputs agree."""

    layer: str
    type: str
    onnx_value: str
    diff: OutputDiff
    onnx_nodes: tuple[tuple[str, str], ...] = ()  # (op_type, node name) of the module's nodes
    onnx_inputs: tuple[str, ...] = ()  # the values carrying its inputs
    inputs_agree: bool | None = True  # None: no input could be matched to an ONNX value

    def to_dict(self) -> dict:
        data = {
            "layer": self.layer,
            "type": self.type,
            "onnx_value": self.onnx_value,
            "onnx_nodes": [{"op_type": op, "name": name} for op, name in self.onnx_nodes],
            "onnx_inputs": list(self.onnx_inputs),
            "inputs_agree": self.inputs_agree,
        }
        data.update({k: v for k, v in self.diff.to_dict().items() if k != "name"})
        return data

    def __str__(self) -> str:
        diff = self.diff
        inputs = {
            True: "its inputs agree, its output does not",
            False: "its inputs already differ (no module's output explains it)",
            None: "its inputs could not be matched to ONNX values",
        }[self.inputs_agree]
        return (
            f"module {self.layer} ({self.type}) -> ONNX {self._nodes_text()}, "
            f"value {self.onnx_value!r}: {inputs}: max abs diff {diff.max_abs_diff:.3g}, "
            f"mean {diff.mean_abs_diff:.3g}, median {diff.median_abs_diff:.3g}, "
            f"p99 {diff.p99_abs_diff:.3g}, max rel {diff.max_rel_diff:.3g}, "
            f"{diff.mismatched} of {diff.size} mismatched; {describe_failure(diff)}"
        )

    def _nodes_text(self) -> str:
        shown = [f"{op} {name!r}" for op, name in self.onnx_nodes[:MAX_NODES_SHOWN]]
        more = len(self.onnx_nodes) - MAX_NODES_SHOWN
        return ", ".join(shown) + (f" and {more} more node(s)" if more > 0 else "")


@dataclass
class ModuleCheck:
    """Every module output compared once: what was compared, on which inputs, and why."""

    reason: str  # why module outputs were compared
    run: str  # the inputs they were compared on (a run's label)
    compared: int = 0
    diverging: list[str] = field(default_factory=list)  # module paths, in finishing order
    root_cause: Divergence | None = None
    skipped: int = 0  # modules with no ONNX value of their output's shape (folded, called twice)
    decisive: bool = False  # True when the verdict rests on it (the outputs could not tell)

    def __bool__(self) -> bool:
        return not self.diverging

    def to_dict(self) -> dict:
        return {
            "reason": self.reason,
            "run": self.run,
            "compared": self.compared,
            "skipped": self.skipped,
            "diverging": list(self.diverging),
            "passed": bool(self),
            "decisive": self.decisive,
            "root_cause": self.root_cause.to_dict() if self.root_cause else None,
        }

    def __str__(self) -> str:
        if self:
            verdict = "all agree"
        else:
            shown = ", ".join(self.diverging[:MAX_DIVERGING_SHOWN])
            more = len(self.diverging) - MAX_DIVERGING_SHOWN
            shown += f" and {more} more" if more > 0 else ""
            verdict = f"{len(self.diverging)} diverge ({shown})"
        if self.decisive:
            head = f"{self.reason}, so every module's output was compared too, on {self.run}"
        else:
            head = f"module outputs compared for {self.reason} on {self.run}"
        lines = [f"{head}: {self.compared} compared, {verdict}"]
        if self.root_cause is not None:
            lines.append(f"root cause: {self.root_cause}")
        return "\n".join(lines)


@dataclass
class _Record:
    """What one module saw in PyTorch: its type, its input tensors and its first output."""

    type: str
    inputs: list = field(default_factory=list)
    output: object = None
    calls: int = 0


@dataclass
class Evidence:
    """What a module check saw, for the root cause and a repro: the file's model, onnxruntime's
    values by name, PyTorch's records and each module's values (by path), and which value holds
    each compared module's output."""

    model: object
    values: dict
    records: dict
    modules: dict
    outputs: dict = field(default_factory=dict)


def check_modules(
    loaded: LoadedModel, onnx_path, inputs, *, atol: float, rtol: float, reason: str, run: str
) -> tuple[ModuleCheck, Evidence]:
    """Run both sides once on `inputs` and compare every module's output."""
    import onnx

    with user_code(loaded.spec, "its forward"):
        records = module_records(loaded.module, inputs)
    model = onnx.load(str(onnx_path))
    modules = _modules_of(model.graph)
    paths = [path for path in records if path in modules]
    if not paths:
        raise InspectorError(
            f"no module of {loaded.spec} matches a node of {onnx_path}: the file records no "
            "PyTorch module names (export it with inspector)"
        )
    values = _onnx_values(model, modules, paths, inputs.arrays(), str(onnx_path))
    evidence = Evidence(model, values, records, modules)
    check = ModuleCheck(reason, run, skipped=len(records) - len(paths))
    for path in paths:
        value = _output_value(modules[path], records[path].output, values)
        if value is None:
            check.skipped += 1
            continue
        evidence.outputs[path] = value
        check.compared += 1
        if not _compare(path, records[path].output, values[value], atol, rtol, statistics=False):
            check.diverging.append(path)
    check.root_cause = _root_cause(check.diverging, evidence, atol, rtol)
    return check, evidence


def _modules_of(graph) -> dict[str, ModuleValues]:
    """Every module's values, and the whole model's: the graph's own inputs and outputs."""
    modules = module_values(graph)
    modules[WHOLE_MODEL] = ModuleValues(
        WHOLE_MODEL,
        list(range(len(graph.node))),
        [value.name for value in graph.input],
        [value.name for value in graph.output],
    )
    return modules


def module_records(module, inputs) -> dict[str, _Record]:
    """Module path -> _Record, in the order modules finish; modules called more than once (a
    shared ReLU) are left out: one ONNX value cannot stand for several calls."""
    import torch
    from torch.utils import _pytree

    records: dict[str, _Record] = {}

    def tensors_of(tree):
        return [t for t in _pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]

    def before(name, sub):
        def hook(_, args, kwargs):
            record = records.setdefault(name, _Record(type(sub).__name__))
            record.calls += 1
            if record.calls == 1:
                # Copy now: the module (an in-place ReLU) may change what it was given.
                record.inputs = [to_numpy(t).copy() for t in tensors_of((args, kwargs))]

        return hook

    def after(name):
        def hook(_, args, output):
            record = records.pop(name)  # re-inserted: the dict keeps finishing order
            records[name] = record
            found = tensors_of(output)
            if record.calls == 1 and found:
                # Copy now: an in-place op later in forward would change the recorded tensor.
                record.output = to_numpy(found[0]).copy()

        return hook

    handles = []
    for name, sub in module.named_modules():
        name = name or WHOLE_MODEL
        handles.append(sub.register_forward_pre_hook(before(name, sub), with_kwargs=True))
        handles.append(sub.register_forward_hook(after(name)))
    try:
        with torch.inference_mode():
            inputs.call(module)
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: record
        for name, record in records.items()
        if record.calls == 1 and record.output is not None
    }


def _onnx_values(model, modules, paths, feed_arrays, label) -> dict:
    """Every input and output value of the modules in `paths`, by name, from one run."""
    graph_inputs = [value.name for value in model.graph.input]
    wanted = list(
        dict.fromkeys(
            value
            for path in paths
            for value in [*modules[path].outputs, *modules[path].inputs]
            if value not in graph_inputs
        )
    )
    session = _session_with_outputs(model, wanted, label)
    fed = feeds(session, feed_arrays, label)
    arrays = dict(zip(wanted, run_session(session, fed, label, output_names=wanted), strict=True))
    arrays.update(fed)
    return arrays


def _output_value(entry: ModuleValues, expected, arrays: dict) -> str | None:
    """The value among the module's outputs that holds what PyTorch returned: the same shape and
    dtype, and of several such the last one made."""
    for value in reversed(entry.outputs):
        got = arrays.get(value)
        if got is not None and got.shape == expected.shape and got.dtype == expected.dtype:
            return value
    return None


def _root_cause(diverging: list[str], evidence: Evidence, atol, rtol) -> Divergence | None:
    """The first diverging module (in finishing order) whose inputs agree; failing that, the first
    whose inputs cannot be told, or the first to diverge at all."""
    verdicts = {}
    for wanted in (True, None, False):
        for path in diverging:
            if path not in verdicts:
                record, entry = evidence.records[path], evidence.modules[path]
                verdicts[path] = _inputs_agree(record, entry, evidence.values, atol, rtol)
            if verdicts[path] is wanted:
                return _divergence(path, evidence, wanted, atol, rtol)
    return None


def _divergence(path: str, evidence: Evidence, inputs_agree, atol, rtol) -> Divergence:
    record, entry, value = evidence.records[path], evidence.modules[path], evidence.outputs[path]
    actual = evidence.values[value]
    return Divergence(
        path,
        record.type,
        value,
        _compare(path, record.output, actual, atol, rtol, statistics=True),
        onnx_nodes=_nodes(evidence.model, entry),
        onnx_inputs=tuple(entry.inputs),
        inputs_agree=inputs_agree,
    )


def _inputs_agree(record: _Record, entry: ModuleValues, arrays: dict, atol, rtol) -> bool | None:
    """True when every tensor the module received agrees with the ONNX value it was paired with,
    None when none could be paired."""
    pairs = paired_inputs(record, entry, arrays)
    if not pairs:
        return None
    return all(
        _compare("", tensor, arrays[value], atol, rtol, statistics=False)
        for value, tensor in pairs.items()
    )


def paired_inputs(record: _Record, entry: ModuleValues, arrays: dict) -> dict:
    """ONNX input value -> the PyTorch tensor (numpy) the module received there: each tensor goes
    to the first unused input value of its shape and dtype."""
    unused = [value for value in entry.inputs if value in arrays]
    pairs = {}
    for tensor in record.inputs:
        for value in unused:
            if arrays[value].shape == tensor.shape and arrays[value].dtype == tensor.dtype:
                pairs[value] = tensor
                unused.remove(value)
                break
    return pairs


def _compare(name, expected, actual, atol, rtol, *, statistics: bool) -> OutputDiff:
    return compare_arrays(name, expected, actual, atol=atol, rtol=rtol, statistics=statistics)


def _nodes(model, entry: ModuleValues) -> tuple[tuple[str, str], ...]:
    """(op_type, name) of the nodes a module became, as the file names them: its own first (a
    parent's code between its submodules), then its submodules'."""
    nodes = [model.graph.node[i] for i in entry.nodes]
    own = [node for node in nodes if node_module(node) == entry.path]
    ordered = own + [node for node in nodes if node_module(node) != entry.path]
    return tuple((node.op_type, node.name or "(unnamed)") for node in ordered)


def _session_with_outputs(model, values: list[str], label: str):
    """A session on `model` with `values` as extra outputs; `model` itself is left as it was."""
    import onnx

    outputs = model.graph.output
    count = len(outputs)
    present = {output.name for output in outputs}
    try:
        for value in values:
            if value not in present:
                # Name only: onnxruntime takes the type and shape from the producing node.
                outputs.append(onnx.ValueInfoProto(name=value))
                present.add(value)
        if model.ByteSize() > _MAX_PROTO_BYTES:
            raise InspectorError(
                f"comparing module outputs: {label} is larger than 2 GB, which it cannot handle"
            )
        serialized = model.SerializeToString()
    finally:
        del outputs[count:]
    return open_session(serialized, label)


def compare_modules(
    report, loaded: LoadedModel, onnx_path, inputs, run: str, *, blind: dict, repro=None
):
    """Compare every module's output and attach the result to `report`.

    With `blind` outputs (name -> why it cannot tell) the verdict rests on the modules too; when
    the file records no modules, that is said, since such a PASSED proves little. With --localize
    (report.localized) the root cause is reported, and with `repro` written out.
    """
    atol, rtol = report.atol, report.rtol  # the defaults: per-output ones are for outputs
    if blind:
        reasons = "; ".join(f"{name}: {why}" for name, why in blind.items())
        reason = f"the outputs cannot tell a right export from a wrong one ({reasons})"
    else:
        reason = "--localize"
    try:
        check, evidence = check_modules(
            loaded, onnx_path, inputs, atol=atol, rtol=rtol, reason=reason, run=run
        )
    except InspectorError as error:
        if report.localized:
            raise InspectorError(f"--localize: {error}") from error
        report.warnings.append(
            f"{reason}, and module outputs could not be compared ({error}): this verdict "
            "proves little"
        )
        return
    if blind and not any(path != WHOLE_MODEL for path in evidence.outputs):
        # The whole model's own output again proves nothing the outputs did not.
        report.warnings.append(
            f"{reason}, and no module inside {loaded.spec} could be compared (the file records "
            "no PyTorch module names, or none with a value of its own): this verdict proves little"
        )
        blind = {}
        if not report.localized:
            return
    check.decisive = bool(blind)
    report.intermediates = check
    if report.localized:
        report.first_divergence = check.root_cause
    if check.diverging and not blind and all(report.runs):
        report.warnings.append(
            f"{len(check.diverging)} module output(s) diverge although the outputs agree"
        )
    if repro is not None and check.root_cause is not None:
        report.repro = str(_write_repro(repro, check.root_cause, evidence, onnx_path))


def _write_repro(folder, cause: Divergence, evidence: Evidence, onnx_path):
    """The root cause's nodes as a model of their own, fed with what PyTorch gave that module
    (onnxruntime's value where PyTorch has none: a shape computed outside it)."""
    from ..onnx.repro import write_repro

    record, entry = evidence.records[cause.layer], evidence.modules[cause.layer]
    given = paired_inputs(record, entry, evidence.values)
    return write_repro(
        folder,
        evidence.model,
        entry,
        cause.onnx_value,
        values={**evidence.values, **given},
        expected=record.output,
        description=f"module {cause.layer} ({cause.type}) of {onnx_path}",
    )
