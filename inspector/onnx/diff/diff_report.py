"""The result of comparing two ONNX models: a ModelDiff that prints itself (text or markdown), turns
into JSON, and is truthy when the models are equal within the tolerances."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...util import html
from ...util.html import short_repr
from ...util.text import plain_table
from ..compare import json_float
from ..report import Run

# Node colours of a drawn diff, strongest first: a node of B shows the first that applies.
NODE_STATES = ("added", "removed-neighbour", "changed", "unchanged")
TEXT_ROWS = 25  # longer lists are cut in text and markdown (JSON lists everything)


@dataclass(frozen=True)
class TensorChange:
    """A graph input or output that differs: its type on each side (None: absent there)."""

    name: str
    kind: str  # "input" or "output"
    a: str | None
    b: str | None

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class OpCount:
    op: str
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    def to_dict(self) -> dict:
        return {"op": self.op, "a": self.a, "b": self.b, "delta": self.delta}


@dataclass(frozen=True)
class NodeChange:
    """A node only in A (removed), only in B (added), or in both but different (changed)."""

    kind: str  # "added", "removed" or "changed"
    op: str
    module: str  # the PyTorch module it came from ("" when unknown)
    a: str | None  # its name in A
    b: str | None  # its name in B
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "kind": self.kind,
            "op": self.op,
            "module": self.module,
            "a": self.a,
            "b": self.b,
        }
        if self.reasons:
            data["reasons"] = list(self.reasons)
        return data


@dataclass(frozen=True)
class InitializerChange:
    """A weight (initializer) added, removed, reshaped or with other values."""

    name: str
    kind: str  # "added", "removed", "shape" or "values"
    a: str | None  # dtype[shape] in A
    b: str | None
    max_abs_diff: float | None = None
    mismatched: int | None = None  # elements out of tolerance

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "a": self.a, "b": self.b}
        if self.kind == "values":
            data["max_abs_diff"] = json_float(self.max_abs_diff)
            data["mismatched"] = self.mismatched
        return data


@dataclass
class ModelDiff:
    """What differs between model A and model B; truthy when they are equal.

    Equal means: the same inputs and outputs, opsets, nodes (paired across the graphs) and
    weights within atol/rtol, and, when the outputs were compared, matching outputs. Metadata
    differences are listed but do not make two models different.
    """

    a: str
    b: str
    atol: float
    rtol: float
    interface: list[TensorChange] = field(default_factory=list)
    opsets: tuple[dict, dict] = ({}, {})
    metadata: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    ops: list[OpCount] = field(default_factory=list)
    nodes: list[NodeChange] = field(default_factory=list)
    initializers: list[InitializerChange] = field(default_factory=list)
    sizes: dict = field(default_factory=dict)  # nodes and initializers on each side
    node_states: dict[str, tuple[str, ...]] = field(default_factory=dict)  # B node -> its states
    runs: list[Run] | None = None  # None: the outputs were not compared
    runs_skipped: str | None = None  # why not, when it was not asked to skip
    drawing: Any = None  # what drew it (a RenderResult), when it was drawn
    warnings: list[str] = field(default_factory=list)

    @property
    def structure_equal(self) -> bool:
        return not (
            self.interface
            or self.opsets[0] != self.opsets[1]
            or any(count.delta for count in self.ops)
            or self.nodes
            or self.initializers
        )

    @property
    def outputs_equal(self) -> bool | None:
        return None if self.runs is None else all(self.runs)

    @property
    def equal(self) -> bool:
        return self.structure_equal and self.outputs_equal is not False

    def __bool__(self) -> bool:
        return self.equal

    def node_state(self, name: str) -> str:
        """The colour of B's node `name` in a drawing: the strongest of its states."""
        states = self.node_states.get(name, ())
        return next((s for s in NODE_STATES if s in states), "unchanged")

    def count(self, table: str, kind: str) -> int:
        rows = self.nodes if table == "nodes" else self.initializers
        return sum(row.kind == kind for row in rows)

    # --- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "equal": self.equal,
            "a": self.a,
            "b": self.b,
            "atol": self.atol,
            "rtol": self.rtol,
            "summary": self.summary(),
            "sizes": self.sizes,
            "interface": [change.to_dict() for change in self.interface],
            "opsets": {"a": self.opsets[0], "b": self.opsets[1]},
            "metadata": [{"key": k, "a": a, "b": b} for k, a, b in self.metadata],
            "ops": [count.to_dict() for count in self.ops],
            "modules": self.modules(),
            "nodes": [change.to_dict() for change in self.nodes],
            "initializers": [change.to_dict() for change in self.initializers],
            "node_colours": {
                name: self.node_state(name)
                for name in self.node_states
                if self.node_state(name) != "unchanged"
            },
            "outputs": None if self.runs is None else [run.to_dict() for run in self.runs],
            "outputs_skipped": self.runs_skipped,
            "warnings": list(self.warnings),
            "drawing": self.drawing.to_dict() if self.drawing is not None else None,
        }

    def modules(self) -> list[dict]:
        """Per PyTorch module: the op types of its nodes added, removed and changed."""
        rows: dict[str, dict] = {}
        for change in self.nodes:
            row = rows.setdefault(
                change.module, {"module": change.module, "added": [], "removed": [], "changed": []}
            )
            row[change.kind].append(change.op)
        return list(rows.values())

    # --- text ---------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: EQUAL or DIFFERENT, and what differs."""
        verdict = "EQUAL" if self.equal else "DIFFERENT"
        parts = self._differences()
        if self.structure_equal:
            parts.insert(0, "same interface, opsets, nodes and weights")
        return f"{verdict} | {self.a} vs {self.b}: {'; '.join(parts)}"

    def _differences(self) -> list[str]:
        parts = []
        if self.interface:
            parts.append(f"{len(self.interface)} input(s)/output(s) differ")
        if self.opsets[0] != self.opsets[1]:
            parts.append(f"opset {_opset_text(self.opsets[0])} -> {_opset_text(self.opsets[1])}")
        nodes = _counted(self.nodes, ("removed", "added", "changed"))
        if nodes:
            parts.append(f"nodes: {nodes}")
        weights = _counted(self.initializers, ("removed", "added", "shape", "values"))
        if weights:
            parts.append(f"initializers: {weights}")
        parts.append(self._outputs_verdict())
        return [part for part in parts if part]

    def _outputs_verdict(self) -> str:
        tolerance = f"atol {self.atol:g}, rtol {self.rtol:g}"
        if self.runs is None:
            return f"outputs not compared ({self.runs_skipped})" if self.runs_skipped else ""
        worst = max((d.max_abs_diff for run in self.runs for d in run.outputs), default=0.0)
        failed = sum(not run for run in self.runs)
        if failed:
            return (
                f"outputs differ in {failed} of {len(self.runs)} run(s) "
                f"(max abs diff {worst:.3g}; {tolerance})"
            )
        return f"outputs match in {len(self.runs)} run(s) (max abs diff {worst:.3g}; {tolerance})"

    def __str__(self) -> str:
        sections = ["\n".join([self.summary(), *(f"  warning: {w}" for w in self.warnings)])]
        for title, columns, rows, right in self._tables():
            if rows:
                shown, cut = rows[:TEXT_ROWS], len(rows) - TEXT_ROWS
                table = plain_table(columns, shown, right=right)
                more = [f"  ... and {cut} more (--format json lists them all)"] if cut > 0 else []
                sections.append("\n".join([f"{title}:", *_indent(table), *more]))
        return "\n\n".join(sections)

    def __repr__(self) -> str:
        return short_repr("ModelDiff", self.summary())

    def _repr_html_(self) -> str:
        tables = [
            html.table(columns, rows, title=title, right=right)
            for title, columns, rows, right in self._tables()
            if rows
        ]
        return html.block(self.summary(), *tables, notes=[f"warning: {w}" for w in self.warnings])

    def to_markdown(self) -> str:
        verdict = "equal" if self.equal else "different"
        lines = [f"## `{self.a}` vs `{self.b}`: {verdict}", "", self.summary()]
        lines += [f"\n> warning: {warning}" for warning in self.warnings]
        for title, columns, rows, right in self._tables():
            if not rows:
                continue
            shown, cut = rows[:TEXT_ROWS], len(rows) - TEXT_ROWS
            lines += ["", f"### {title[0].upper()}{title[1:]}", ""]
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "".join("---:|" if c in right else "---|" for c in columns))
            lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in shown]
            if cut > 0:
                lines += ["", f"... and {cut} more (`--format json` lists them all)"]
        return "\n".join(lines)

    def _tables(self):
        """(title, columns, rows, right-aligned columns) for every section, in reading order."""
        ab = (f"A: {self.a}", f"B: {self.b}")
        yield (
            "inputs and outputs that differ",
            ["tensor", "kind", "A", "B"],
            [[c.name, c.kind, c.a or "(absent)", c.b or "(absent)"] for c in self.interface],
            set(),
        )
        yield ("opsets", ["domain", "A", "B"], self._opset_rows(), {"A", "B"})
        yield (
            "metadata that differs",
            ["key", "A", "B"],
            [[key, _short(a), _short(b)] for key, a, b in self.metadata],
            set(),
        )
        yield (
            f"ops ({ab[0]}, {ab[1]})",
            ["op", "A", "B", "delta"],
            [[c.op, str(c.a), str(c.b), f"{c.delta:+d}" if c.delta else "0"] for c in self.ops],
            {"A", "B", "delta"},
        )
        yield (
            "nodes added, removed or changed, by the module they came from",
            ["module", "removed", "added", "changed"],
            [
                [
                    row["module"] or "(top level)",
                    *(_ops_text(row[k]) for k in ("removed", "added", "changed")),
                ]
                for row in self.modules()
            ],
            set(),
        )
        yield ("initializers that differ", *self._initializer_table())
        if self.runs:
            yield ("outputs on seeded inputs", *self._outputs_table())

    def _opset_rows(self) -> list[list[str]]:
        a, b = self.opsets
        if a == b:
            return []
        return [[d or "ai.onnx", str(a.get(d, "-")), str(b.get(d, "-"))] for d in sorted({*a, *b})]

    def _initializer_table(self):
        columns = ["initializer", "change", "A", "B", "max abs diff", "mismatched"]
        rows = [
            [
                c.name,
                c.kind,
                c.a or "-",
                c.b or "-",
                f"{c.max_abs_diff:.3g}" if c.max_abs_diff is not None else "",
                str(c.mismatched) if c.mismatched is not None else "",
            ]
            for c in self.initializers
        ]
        return columns, rows, {"max abs diff", "mismatched"}

    def _outputs_table(self):
        columns = ["run", "output", "shape", "max abs diff", "max rel diff", "mismatched"]
        rows = [
            [
                run.label,
                diff.name,
                str(list(diff.shape)),
                f"{diff.max_abs_diff:.3g}",
                f"{diff.max_rel_diff:.3g}",
                f"{diff.mismatched} / {math.prod(diff.shape)}",
            ]
            for run in self.runs or ()
            for diff in run.outputs
        ]
        return columns, rows, {"max abs diff", "max rel diff", "mismatched"}


def _counted(rows, kinds) -> str:
    counts = [(kind, sum(row.kind == kind for row in rows)) for kind in kinds]
    words = {"shape": "reshaped", "values": "with other values"}
    return ", ".join(f"{n} {words.get(kind, kind)}" for kind, n in counts if n)


def _opset_text(opsets: dict) -> str:
    return ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(opsets.items())) or "none"


def _ops_text(ops: list[str]) -> str:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return ", ".join(op if n == 1 else f"{op} x{n}" for op, n in counts.items())


def _short(value: str | None, limit: int = 60) -> str:
    if value is None:
        return "(absent)"
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _cell(value: str) -> str:
    return str(value).replace("|", "\\|")


def _indent(table: str) -> list[str]:
    return ["  " + line for line in table.splitlines()]
