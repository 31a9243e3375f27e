"""Compare every module's output in PyTorch and onnxruntime, and find the root cause of a mismatch.

PyTorch side: hooks on every submodule record the tensors it received and the first tensor it
returned, in the order the modules finish (a layer before the block that contains it). ONNX side:
torch.onnx records which module each node came from (onnx/scopes.py), so a module's input and
output values are those crossing the boundary of its nodes (onnx/module_values.py); they become
extra graph outputs of the file's graph without its weights (onnx/weightless.py: onnxruntime reads
them from the file, so no copy is made in Python and a file past 2 GiB works too).

Memory stays bounded at every size: modules are compared a chunk at a time (about CHUNK_BYTES of
their values on each side), each chunk one PyTorch forward recording only its modules and one
onnxruntime run with only their values as extra outputs; a chunk's values are dropped once
compared, but for the few modules that may still turn out to be the root cause.

The root cause is the module whose output diverges while its inputs still agree: not the first
divergence in execution order when the fault sits in a parent's own code between its submodules.
This is how verify proves an export whose outputs cannot discriminate (a zero-initialized head),
and what --localize reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InspectorError, option
from ..onnx.compare import OutputDiff, compare_arrays, judged
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
# The module values (inputs and outputs) one chunk holds on each side, PyTorch's and onnxruntime's.
# A small model is one chunk: one forward, one run. Tests set it tiny to force many chunks.
CHUNK_BYTES = 64 * 2**20


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
    errors: dict = field(default_factory=dict)  # module path -> max abs diff / its largest value
    node_modules: dict = field(default_factory=dict)  # ONNX node name -> its compared module

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
    """What one module saw in PyTorch: its type, its input tensors and its first output (held only
    while its chunk is compared), and their bytes."""

    type: str
    inputs: list = field(default_factory=list)
    output: object = None
    calls: int = 0
    returned: bool = False  # its first call returned a tensor
    nbytes: int = 0  # its inputs' and first output's bytes, recorded or not


@dataclass
class Evidence:
    """What a module check saw, for the root cause and a repro: the file's model (without its
    weights: they stay in the file), onnxruntime's values by name, PyTorch's records and each
    module's values (by path), and which value holds each compared module's output. Once every
    chunk is compared, `values` and the records' tensors remain for the root cause only."""

    model: object
    values: dict
    records: dict
    modules: dict
    outputs: dict = field(default_factory=dict)


def check_modules(
    loaded: LoadedModel,
    onnx_path,
    inputs,
    *,
    atol: float,
    rtol: float,
    reason: str,
    run: str,
    budget: dict | None = None,
) -> tuple[ModuleCheck, Evidence]:
    """Run both sides on `inputs` and compare every module's output (also by `budget`, the
    cosine/SQNR floors a low-precision file is judged by: where the error grows past them), a
    chunk of modules at a time."""
    import torch

    tol = (atol, rtol, budget or {})
    model = _graph_of(onnx_path)
    modules = _modules_of(model.graph)
    rng = torch.get_rng_state()  # every chunk's forward sees the same random numbers
    with user_code(loaded.spec, "its forward"):
        records = module_records(loaded.module, inputs, keep=set(modules), budget=CHUNK_BYTES)
    paths = [path for path in records if path in modules]
    if not paths:
        raise InspectorError(
            f"no module of {loaded.spec} matches a node of {onnx_path}: the file records no "
            "PyTorch module names (export it with inspector)"
        )
    evidence = Evidence(model, {}, records, modules)
    check = ModuleCheck(reason, run, skipped=len(records) - len(paths))
    chosen = _Candidates(bool(tol[2]))
    session = _ChunkSession(model, inputs.arrays(), Path(onnx_path))
    for number, chunk in enumerate(_chunks(paths, records)):
        if number:  # the first chunk was recorded along with every module's size
            torch.set_rng_state(rng)
            with user_code(loaded.spec, "its forward"):
                fresh = module_records(loaded.module, inputs, keep=set(chunk))
            records.update({path: fresh[path] for path in chunk})
        values = session.values(modules, chunk)
        _compare_chunk(check, evidence, chunk, values, tol, chosen)
        chosen.keep(evidence, values)
    check.root_cause = chosen.root_cause(evidence, tol)
    check.node_modules = _node_modules(model.graph, modules, list(evidence.outputs))
    return check, evidence


def _chunks(paths: list[str], records: dict) -> list[list[str]]:
    """The paths in finishing order, cut into chunks of about CHUNK_BYTES each (at least one
    module each): first those the first forward recorded, then the rest by their sizes."""
    recorded = [path for path in paths if records[path].output is not None]
    chunks = [recorded] if recorded else []
    current: list[str] = []
    size = 0
    for path in paths:
        if records[path].output is not None:
            continue
        if current and size + records[path].nbytes > CHUNK_BYTES:
            chunks.append(current)
            current, size = [], 0
        current.append(path)
        size += records[path].nbytes
    return chunks + ([current] if current else [])


def _compare_chunk(check: ModuleCheck, evidence: Evidence, chunk, values, tol, chosen) -> None:
    """Compare a chunk's modules, note each diverging one's verdict for the root cause, and drop
    PyTorch's tensors (the root cause's candidates keep theirs)."""
    local = Evidence(evidence.model, values, evidence.records, evidence.modules, evidence.outputs)
    for path in chunk:
        record = evidence.records[path]
        value = _output_value(evidence.modules[path], record.output, values, path == WHOLE_MODEL)
        if value is None:
            check.skipped += 1
            continue
        evidence.outputs[path] = value
        check.compared += 1
        diff = _compare(path, record.output, values[value], *tol, statistics=False)
        check.errors[path] = _scaled_error(diff)
        if not diff:
            check.diverging.append(path)
            chosen.consider(path, local, tol)


class _Candidates:
    """The root cause among the diverging modules seen so far (_root_cause's rules, decided a
    chunk at a time): the first whose inputs agree, else the first whose inputs cannot be told,
    else the first to diverge; judged by a budget, the one where the error grows the most. Only
    these keep their tensors and values."""

    def __init__(self, budgeted: bool):
        self.budgeted = budgeted
        self.first: dict = {}  # inputs_agree (True/None/False) -> the first such path
        self.verdicts: dict[str, bool | None] = {}
        self.grows: str | None = None
        self.growth = 0.0

    def consider(self, path: str, evidence: Evidence, tol) -> None:
        record, entry = evidence.records[path], evidence.modules[path]
        agree = _inputs_agree(record, entry, evidence.values, tol)
        self.verdicts[path] = agree
        self.first.setdefault(agree, path)
        if self.budgeted and path != WHOLE_MODEL:
            growth = _sqnr_drop(path, evidence)
            if self.grows is None or growth > self.growth:  # max(): the first of the largest
                self.grows, self.growth = path, growth

    def keep(self, evidence: Evidence, values: dict) -> None:
        """Keep the candidates' tensors and values (a chunk's `values` among them); drop the rest."""
        wanted = {*self.first.values(), self.grows} - {None}
        needed = {
            name
            for path in wanted
            for name in [*evidence.modules[path].inputs, evidence.outputs[path]]
        }
        evidence.values.update({name: values[name] for name in needed if name in values})
        for name in evidence.values.keys() - needed:
            del evidence.values[name]
        for path, record in evidence.records.items():
            if path not in wanted:
                record.inputs, record.output = [], None

    def root_cause(self, evidence: Evidence, tol) -> Divergence | None:
        if self.grows is not None:
            return _divergence(self.grows, evidence, self.verdicts[self.grows], tol)
        for wanted in (True, None, False):
            if wanted in self.first:
                return _divergence(self.first[wanted], evidence, wanted, tol)
        return None


# onnxruntime reads model bytes' external data from a folder it is told of from this release on (the
# oldest here, 1.20, wants a model path); an older one gets the whole file, weights and all.
_EXTERNAL_DATA_FROM_BYTES = (1, 30)


def _graph_of(onnx_path):
    import onnx
    import onnxruntime

    from ..onnx.weightless import load_weightless

    release = tuple(int(part) for part in onnxruntime.__version__.split(".")[:2])
    if release >= _EXTERNAL_DATA_FROM_BYTES:
        return load_weightless(onnx_path)
    return onnx.load(str(onnx_path))


def _scaled_error(diff: OutputDiff) -> float:
    """A module's divergence at its own scale: its largest error over its largest value."""
    peak = diff.peak or 0.0
    return diff.max_abs_diff / peak if peak > 0 else diff.max_abs_diff


def _node_modules(graph, modules: dict, compared: list[str]) -> dict[str, str]:
    """Node name (as a drawing names it) -> the innermost compared module it belongs to; nodes
    of no module inside the model (quantization's Q/DQ pairs) belong to none."""
    from ..onnx.diff.graph_index import unique_node_names

    names = unique_node_names(graph.node)
    owner: dict[int, str] = {}
    inner = [path for path in compared if path != WHOLE_MODEL]
    for path in sorted(inner, key=lambda p: p.count(".")):
        for index in modules[path].nodes:
            owner[index] = path  # deeper paths come later and win
    return {names[index]: path for index, path in owner.items()}


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


def module_records(module, inputs, *, keep=None, budget: int | None = None) -> dict[str, _Record]:
    """Module path -> _Record, in the order modules finish; modules called more than once (a
    shared ReLU) are left out: one ONNX value cannot stand for several calls.

    Only the modules in `keep` (all when None) keep copies of their tensors; with `budget`, only
    as long as the copies of the modules finished so far are within that many bytes (the module
    that passes it keeps its own): every other record has its size alone.
    """
    import torch
    from torch.utils import _pytree

    records: dict[str, _Record] = {}
    spent = [0]

    def tensors_of(tree):
        return [t for t in _pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]

    def kept(name) -> bool:
        return (keep is None or name in keep) and (budget is None or spent[0] <= budget)

    def before(name, sub):
        def hook(_, args, kwargs):
            record = records.setdefault(name, _Record(type(sub).__name__))
            record.calls += 1
            if record.calls == 1:
                given = tensors_of((args, kwargs))
                record.nbytes = sum(t.nbytes for t in given)
                if kept(name):
                    # Copy now: the module (an in-place ReLU) may change what it was given.
                    record.inputs = [to_numpy(t).copy() for t in given]

        return hook

    def after(name):
        def hook(_, args, output):
            record = records.pop(name)  # re-inserted: the dict keeps finishing order
            records[name] = record
            found = tensors_of(output)
            if record.calls == 1 and found:
                record.returned = True
                record.nbytes += found[0].nbytes
                if kept(name):
                    # Copy now: an in-place op later in forward would change the recorded tensor.
                    record.output = to_numpy(found[0]).copy()
                    spent[0] += record.nbytes
                else:
                    record.inputs = []  # started within the budget, finished past it

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
        name: record for name, record in records.items() if record.calls == 1 and record.returned
    }


class _ChunkSession:
    """onnxruntime runs of the weightless model with a chunk's module values as extra outputs,
    one session at a time; the weights are read from the file's folder."""

    def __init__(self, model, feed_arrays: list, onnx_path: Path):
        self.model, self.feed_arrays, self.path = model, feed_arrays, onnx_path
        self.graph_inputs = {value.name for value in model.graph.input}

    def values(self, modules: dict, paths: list[str]) -> dict:
        """Every input and output value of the modules in `paths`, by name, from one run."""
        wanted = list(
            dict.fromkeys(
                value
                for path in paths
                for value in [*modules[path].outputs, *modules[path].inputs]
                if value not in self.graph_inputs
            )
        )
        label = self.path.name
        session = _session_with_outputs(self.model, wanted, label, self.path.parent)
        fed = feeds(session, self.feed_arrays, label)
        arrays = dict(
            zip(wanted, run_session(session, fed, label, output_names=wanted), strict=True)
        )
        arrays.update(fed)
        return arrays


def _output_value(entry: ModuleValues, expected, arrays: dict, whole: bool = False) -> str | None:
    """The value among the module's outputs that holds what PyTorch returned first: the same
    shape and dtype. The whole model's outputs are in the graph's order, so its first is the
    graph's first. A module's boundary values are in the order they are made, not returned: of
    several that fit (a head's scores and boxes), the one closest to PyTorch's value is the one
    it returned there; pairing by the order made compared scores with boxes (a false FAILED)."""
    fitting = [
        value
        for value in entry.outputs
        if (got := arrays.get(value)) is not None
        and got.shape == expected.shape
        and got.dtype == expected.dtype
    ]
    if not fitting:
        return None
    if whole:
        return entry.outputs[0] if entry.outputs[0] in fitting else None
    if len(fitting) == 1:
        return fitting[0]
    return min(reversed(fitting), key=lambda value: _distance(expected, arrays[value]))


def _distance(expected, actual) -> float:
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(np.asarray(expected, np.float64) - np.asarray(actual, np.float64))
    return float(np.nanmax(gap)) if gap.size and not np.isnan(gap).all() else float("inf")


_CLEAN_DB = 150.0  # the SQNR of an input that arrives exact (float32 rounding is ~140 dB)


def _sqnr_drop(path: str, evidence: Evidence) -> float:
    """How many dB of SQNR a module loses: its inputs' worst SQNR (against PyTorch's) less its
    output's. Quantization error enters at every layer; the layer that adds the most is named."""
    from ..onnx.compare import similarity

    def sqnr(expected, actual) -> float:
        import numpy as np

        want, got = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
        if want.shape != got.shape or not want.size:
            return _CLEAN_DB
        value = similarity(want, got)["sqnr_db"]
        return _CLEAN_DB if value is None else min(value, _CLEAN_DB)

    record, entry = evidence.records[path], evidence.modules[path]
    pairs = paired_inputs(record, entry, evidence.values)
    floor = min((sqnr(t, evidence.values[v]) for v, t in pairs.items()), default=_CLEAN_DB)
    return floor - sqnr(record.output, evidence.values[evidence.outputs[path]])


def _divergence(path: str, evidence: Evidence, inputs_agree, tol) -> Divergence:
    record, entry, value = evidence.records[path], evidence.modules[path], evidence.outputs[path]
    actual = evidence.values[value]
    return Divergence(
        path,
        record.type,
        value,
        _compare(path, record.output, actual, *tol, statistics=True),
        onnx_nodes=_nodes(evidence.model, entry),
        onnx_inputs=tuple(entry.inputs),
        inputs_agree=inputs_agree,
    )


def _inputs_agree(record: _Record, entry: ModuleValues, arrays: dict, tol) -> bool | None:
    """True when every tensor the module received agrees with the ONNX value it was paired with,
    None when none could be paired."""
    pairs = paired_inputs(record, entry, arrays)
    if not pairs:
        return None
    return all(
        _compare("", tensor, arrays[value], *tol, statistics=False)
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


def _compare(name, expected, actual, atol, rtol, budget, *, statistics: bool) -> OutputDiff:
    diff = compare_arrays(name, expected, actual, atol=atol, rtol=rtol, statistics=statistics)
    if budget and diff:
        diff = judged(diff, expected, actual, _whole_output_budget(budget), ())
    return diff


def _whole_output_budget(budget: dict) -> dict:
    """The figures of a budget that any value has (topk and row cosine are for outputs)."""
    return {k: v for k, v in budget.items() if k in ("cosine", "sqnr", "pearson")}


def _nodes(model, entry: ModuleValues) -> tuple[tuple[str, str], ...]:
    """(op_type, name) of the nodes a module became, as the file names them: its own first (a
    parent's code between its submodules), then its submodules'."""
    nodes = [model.graph.node[i] for i in entry.nodes]
    own = [node for node in nodes if node_module(node) == entry.path]
    ordered = own + [node for node in nodes if node_module(node) != entry.path]
    return tuple((node.op_type, node.name or "(unnamed)") for node in ordered)


def _session_with_outputs(model, values: list[str], label: str, folder: Path):
    """A session on the weightless `model` with `values` as extra outputs, its weights read from
    `folder`; `model` itself is left as it was."""
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
        serialized = model.SerializeToString()
    finally:
        del outputs[count:]
    return open_session(serialized, label, external_data_folder=folder)


def compare_modules(
    report, loaded: LoadedModel, onnx_path, inputs, run: str, *, blind: dict, repro=None
):
    """Compare every module's output and attach the result to `report`.

    With `blind` outputs (name -> why it cannot tell) the verdict rests on the modules too; when
    the file records no modules, that is said, since such a PASSED proves little. With --localize
    (report.localized) the root cause is reported, and with `repro` written out.
    """
    atol, rtol = report.atol, report.rtol  # the defaults: per-output ones are for outputs
    budget = report.tolerances.budget if report.tolerances is not None else None
    if blind:
        reasons = "; ".join(f"{name}: {why}" for name, why in blind.items())
        reason = f"the outputs cannot tell a right export from a wrong one ({reasons})"
    else:
        reason = "--localize"
    try:
        check, evidence = check_modules(
            loaded, onnx_path, inputs, atol=atol, rtol=rtol, reason=reason, run=run, budget=budget
        )
    except InspectorError as error:
        if report.localized:
            raise InspectorError(f"{option('--localize', 'localize')}: {error}") from error
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
        weights_folder=Path(onnx_path).parent,
    )
