"""The verdict of a verification: runs of per-output diffs, printed as PASSED/FAILED and a table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..defaults import ATOL, RTOL
from ..errors import option
from ..util import html
from ..util.files import check_writable_destination, write_atomically
from ..util.html import short_repr
from ..util.text import plain_table, printable
from .compare import SMALL, OutputDiff, json_float

MAX_FAILURE_LINES = 8  # worst elements listed under the table; the JSON has all of them


@dataclass(frozen=True)
class Run:
    """One set of inputs through both runtimes: a seed and batch size, or a golden data set."""

    seed: int | None
    batch_size: int | None
    outputs: tuple[OutputDiff, ...]
    data_set: str | None = None
    notes: tuple[str, ...] = ()  # shape, dtype or output-count differences, in words
    sizes: dict = field(default_factory=dict)  # other dynamic axes than the batch: label -> size

    def __bool__(self) -> bool:
        return all(self.outputs) and not self.notes

    @property
    def label(self) -> str:
        if self.data_set:
            return self.data_set
        seed = "given inputs" if self.seed is None else f"seed {self.seed}"
        others = "".join(f", {label} {size}" for label, size in self.sizes.items())
        return f"{seed}, batch {self.batch_size}{others}"

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "outputs": [diff.to_dict() for diff in self.outputs],
        }
        if self.data_set:
            data["data_set"] = self.data_set
        if self.sizes:
            data["sizes"] = dict(self.sizes)
        if self.notes:
            data["notes"] = list(self.notes)
        return data


@dataclass
class VerifyReport:
    """The verdict: truthy when every output of every run matched within its tolerances, and,
    where the outputs could not tell (constant, or tiny), every module's output as well."""

    model: str
    onnx_file: str
    atol: float
    rtol: float
    runs: list[Run] = field(default_factory=list)
    first_divergence: Any = None  # the root cause (a localize.Divergence), or None
    localized: bool = False
    reference: str = "PyTorch"  # what onnxruntime is compared with
    warnings: list[str] = field(default_factory=list)
    tolerances: Any = None  # a tolerances.Tolerances when some output has its own
    intermediates: Any = None  # a localize.ModuleCheck when module outputs were compared
    repro: str | None = None  # the --repro folder written
    precision: str = "fp32"  # what the file computes in (inspector.onnx.precision)
    same_dtype: str | None = None  # the dtype PyTorch was also run in (fp16/bf16 files)
    same_dtype_runs: list[Run] = field(default_factory=list)  # onnxruntime against it (no verdict)
    drawing: Any = None  # verify --localize -o: the RenderResult of the divergence drawing

    @property
    def passed(self) -> bool:
        decisive = self.intermediates is not None and self.intermediates.decisive
        return bool(self.runs) and all(self.runs) and (not decisive or bool(self.intermediates))

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "passed": self.passed,
            "atol": json_float(self.atol),
            "rtol": self.rtol,
            "tolerances": self.tolerances.to_dict() if self.tolerances else {},
            "runs": [run.to_dict() for run in self.runs],
            "model": self.model,
            "reference": self.reference,
            "warnings": list(self.warnings),
            "expected_nonfinite": _nonfinite_counts(self.runs),
            "onnx": self.onnx_file,
            "precision": self.precision,
            **({"drawing": str(self.drawing.path)} if self.drawing is not None else {}),
            "budget": dict(self.tolerances.budget) if self.tolerances else {},
        }
        if self.same_dtype:
            data["same_dtype"] = {
                "dtype": self.same_dtype,
                "runs": [run.to_dict() for run in self.same_dtype_runs],
            }
        if self.intermediates is not None:
            data["intermediates"] = self.intermediates.to_dict()
        if self.localized:
            divergence = self.first_divergence
            data["first_divergence"] = divergence.to_dict() if divergence else None
            data["repro"] = self.repro
        return data

    def __str__(self) -> str:
        agreement = self._agreement()
        lines = [self._headline(), _diff_table(self.runs, agreement), *self._same_dtype_lines()]
        lines += self._notes()
        # Output names come from the ONNX file: its escape sequences must not reach the terminal.
        return "\n".join(printable(line) for line in "\n".join(lines).splitlines() if line)

    def __repr__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        outputs = len(self.runs[0].outputs) if self.runs else 0
        diffs = [diff.max_abs_diff for run in self.runs for diff in run.outputs]
        worst = f", max abs diff {max(diffs):.2g}" if diffs else ""
        return short_repr(
            "VerifyReport",
            f"{verdict} {self.model}: {html.counted(outputs, 'output')}, "
            f"{html.counted(len(self.runs), 'run')}{worst}",
        )

    def _repr_html_(self) -> str:
        columns, rows = _diff_rows(self.runs, self._agreement())
        notes = [line.strip() for note in self._notes() for line in note.splitlines()]
        return html.block(
            self._headline(), html.table(columns, rows, right=columns[3:]), notes=notes
        )

    def _agreement(self) -> bool:
        """Low precision, or a budget: the table shows cosine, SQNR and Pearson."""
        return self.precision != "fp32" or bool(self.tolerances and self.tolerances.budget)

    def _same_dtype_lines(self) -> list[str]:
        if not self.same_dtype_runs:
            return []
        return [
            f"  onnxruntime against PyTorch in {self.same_dtype} (for information: what the "
            "export adds to the precision's own error)",
            _diff_table(self.same_dtype_runs, True, brief=True),
        ]

    def _notes(self) -> list[str]:
        lines = [f"  {run.label}: {note}" for run in self.runs for note in run.notes]
        lines += _failure_lines(self.runs, self.reference)
        lines += _own_scale_lines(self.runs)
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.intermediates is not None:
            lines += [f"  {line}" for line in str(self.intermediates).splitlines()]
        elif self.localized:
            lines.append("  root cause: none, every module matches within tolerance")
        if self.repro:
            lines.append(
                f"  repro: {self.repro}/model.onnx and its test data; check it without PyTorch: "
                f"inspector verify {self.repro}/model.onnx --data {self.repro}{self._options()}"
            )
        return lines

    def _headline(self) -> str:
        tolerances = self.tolerances.describe() if self.tolerances else self._plain_tolerances()
        where = f"{tolerances}; {self.onnx_file}"
        runs = f"{len(self.runs)} run(s)"
        modules = self.intermediates
        if self.precision != "fp32":
            where = f"{self.precision} file; {where}"
        if self.passed:
            also = f" and in {modules.compared} module outputs" if modules and modules else ""
            return (
                f"PASSED | {self.model}: onnxruntime matches {self.reference} in {runs}{also} "
                f"({where})"
            )
        failed = sum(not run for run in self.runs)
        if failed or modules is None:
            return f"FAILED | {self.model}: {failed} of {runs} mismatch ({where})"
        return (
            f"FAILED | {self.model}: the outputs match in {runs}, but {len(modules.diverging)} "
            f"of {modules.compared} module outputs diverge ({where})"
        )

    def _options(self) -> str:
        """The tolerance options this report was made with, where they are not the defaults."""
        options = [("--atol", self.atol, ATOL), ("--rtol", self.rtol, RTOL)]
        return "".join(f" {flag} {value:g}" for flag, value, default in options if value != default)

    def _plain_tolerances(self) -> str:
        from .tolerances import describe_pair

        return describe_pair(self.atol, self.rtol)


def save_report(report, destination) -> Path:
    """Write a report's JSON atomically: a reader sees the old file or the whole new one."""
    destination = check_report_destination(destination)
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    return write_atomically(destination, text, f"--report {destination}")


def check_report_destination(destination) -> Path:
    """Refuse a --report path we could not write, before any slow work starts."""
    return check_writable_destination(destination, "--report")


def nonfinite_warnings(runs: list[Run], reference: str) -> list[str]:
    """NaN or Inf in the reference's own outputs: the comparison proves little where they are."""
    warnings = []
    for name, counts in _nonfinite_counts(runs).items():
        warnings.append(
            f"{reference}'s own output {name!r} holds {counts['nan']} NaN and {counts['inf']} Inf "
            f"value(s) over {counts['runs']} run(s): the comparison proves little where they are"
        )
    return warnings


def _nonfinite_counts(runs: list[Run]) -> dict:
    counts: dict[str, dict] = {}
    for run in runs:
        for diff in run.outputs:
            if diff.nonfinite_expected:
                entry = counts.setdefault(diff.name, {"nan": 0, "inf": 0, "runs": 0})
                entry["nan"] += diff.expected_nan
                entry["inf"] += diff.expected_inf
                entry["runs"] += 1
    return counts


def _diff_table(runs: list[Run], agreement: bool = False, brief: bool = False) -> str:
    columns, rows = _diff_rows(runs, agreement, brief)
    table = plain_table(columns, rows, right=set(columns[3:]))
    return "\n".join("  " + line for line in table.splitlines())


def _diff_rows(
    runs: list[Run], agreement: bool = False, brief: bool = False
) -> tuple[list[str], list[list[str]]]:
    """The per-output table's columns and rows; `agreement` adds cosine, SQNR, Pearson and
    --metric figures, `brief` keeps only max abs besides them."""
    nonfinite = any(
        diff.nonfinite_expected or diff.actual_nan or diff.actual_inf
        for run in runs
        for diff in run.outputs
    )
    figures = ["max abs", "mean abs", "median abs", "p99 abs", "max rel"]
    if agreement:  # room for the agreement figures: the JSON has the percentiles
        figures = ["max abs"] if brief else ["max abs", "mean abs", "max rel"]
    metrics = list(dict.fromkeys(k for run in runs for d in run.outputs for k in d.metrics))
    columns = ["run", "output", "shape", *figures]
    headers = [_METRIC_HEADERS.get(key, key) for key in metrics]
    columns += ["cosine", "SQNR dB", "Pearson", *headers] if agreement else []
    columns += [] if brief else ["mismatched"]
    columns += ["NaN/Inf (ref | ort)"] if nonfinite and not brief else []
    rows = []
    for run in runs:
        for diff in run.outputs:
            # A newline in an output's name would make two lines of the table.
            row = [run.label, printable(diff.name), str(list(diff.shape))]
            values = (
                diff.max_abs_diff,
                diff.mean_abs_diff,
                diff.median_abs_diff,
                diff.p99_abs_diff,
                diff.max_rel_diff,
            )
            chosen = dict(
                zip(
                    ["max abs", "mean abs", "median abs", "p99 abs", "max rel"], values, strict=True
                )
            )
            row += [_number(chosen[figure]) for figure in figures]
            if agreement:
                row += [_fixed(diff.cosine), _agreement(diff.sqnr_db, 3), _fixed(diff.pearson)]
                row += [_agreement(diff.metrics.get(key), 4) for key in metrics]
            if brief:
                rows.append(row)
                continue
            row.append(f"{diff.mismatched} / {diff.size}")
            if nonfinite:
                row.append(
                    f"{diff.expected_nan}/{diff.expected_inf} | {diff.actual_nan}/{diff.actual_inf}"
                )
            rows.append(row)
    return columns, rows


_METRIC_HEADERS = {"topk_agreement": "top-k agree", "min_row_cosine": "row cosine"}


def _fixed(value: float | None) -> str:
    """Cosine and Pearson sit near 1: 0.9999871 says what 1 (three digits) hides."""
    return "-" if value is None else f"{value:.7f}"


def _agreement(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "inf"


def _failure_lines(runs: list[Run], reference: str) -> list[str]:
    """For each failing output: its worst element, and the tolerance that would have passed."""
    failing = [(run, diff) for run in runs for diff in run.outputs if not diff]
    side = reference if reference == "PyTorch" else "expected"
    lines = [
        f"  {run.label} · {diff.name}: {describe_failure(diff, side)}"
        for run, diff in failing[:MAX_FAILURE_LINES]
    ]
    if len(failing) > MAX_FAILURE_LINES:
        lines.append(f"  ... and {len(failing) - MAX_FAILURE_LINES} more failing output(s)")
    return lines


def describe_failure(diff: OutputDiff, reference: str = "PyTorch") -> str:
    """'worst element [0, 3]: PyTorch 1.25, onnxruntime 0.75; would pass with --atol 0.51 ...'."""
    parts = []
    if diff.worst is not None:
        index = ", ".join(map(str, diff.worst.index))
        parts.append(
            f"worst element [{index}]: {reference} {_value(diff.worst.expected)}, "
            f"onnxruntime {_value(diff.worst.actual)}"
        )
    if diff.over_budget:
        parts.append("over budget: " + ", ".join(diff.over_budget))
    passing = []
    if diff.required_atol is not None:
        atol = _setting("--atol", "atol", _round_up(diff.required_atol))
        passing.append(f"{atol} (at rtol {diff.rtol:g})")
    if diff.required_rtol is not None:
        at = "atol = rtol x its largest value" if diff.own_scale else f"atol {diff.atol:g}"
        passing.append(f"{_setting('--rtol', 'rtol', _round_up(diff.required_rtol))} (at {at})")
    if passing:
        parts.append("would pass with " + " or ".join(passing))
    elif diff.worst is not None:
        parts.append("no tolerance would pass it")
    return "; ".join(parts) or f"{diff.mismatched} element(s) out of tolerance"


def _own_scale_lines(runs: list[Run]) -> list[str]:
    """Outputs judged at their own scale, once per output name."""
    seen: dict[str, list[OutputDiff]] = {}
    for run in runs:
        for diff in run.outputs:
            if diff.own_scale and diff.peak:  # (a constant zero says so elsewhere)
                seen.setdefault(diff.name, []).append(diff)
    return [
        f"  {name}: its values stay under {SMALL} x atol (largest "
        f"{max(d.peak or 0.0 for d in diffs):.2g}), so it was judged at its own scale, "
        f"atol = rtol x its largest value, in {len(diffs)} run(s)"
        for name, diffs in seen.items()
    ]


def _value(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _setting(flag: str, parameter: str, value: str) -> str:
    """`--atol 0.5` for the command line, `atol=0.5` for a Python caller."""
    return option(f"{flag} {value}", f"{parameter}={value}")


def _round_up(value: float) -> str:
    """A tolerance a little above `value`, in two significant digits: one that surely passes."""
    if value <= 0:
        return "0"
    exponent = math.floor(math.log10(value)) - 1
    return f"{math.ceil(value / 10**exponent * (1 + 1e-9)) * 10**exponent:.2g}"
