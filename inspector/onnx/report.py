"""The verdict of a verification: runs of per-output diffs, printed as PASSED/FAILED and a table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..files import check_writable_destination, write_atomically
from ..text import plain_table, printable
from .compare import OutputDiff


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
        data = {
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
        # Output names come from the ONNX file: its escape sequences must not reach the terminal.
        return "\n".join(printable(line) for line in "\n".join(lines).splitlines() if line)

    def _headline(self) -> str:
        where = f"atol {self.atol:g}, rtol {self.rtol:g}; {self.onnx_file}"
        if self.passed:
            return (
                f"PASSED | {self.model}: onnxruntime matches {self.reference} in {len(self.runs)} "
                f"run(s) ({where})"
            )
        failed = sum(not run for run in self.runs)
        return f"FAILED | {self.model}: {failed} of {len(self.runs)} run(s) mismatch ({where})"


def save_report(report, destination) -> Path:
    """Write a report's JSON atomically: a reader sees the old file or the whole new one."""
    destination = check_report_destination(destination)
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    return write_atomically(destination, text, f"--report {destination}")


def check_report_destination(destination) -> Path:
    """Refuse a --report path we could not write, before any slow work starts."""
    return check_writable_destination(destination, "--report")


def _diff_table(runs: list[Run]) -> str:
    columns = ["run", "output", "shape", "max abs diff", "max rel diff", "mismatched"]
    rows = [
        [
            run.label,
            printable(diff.name),  # a newline in it would make two lines of the table
            str(list(diff.shape)),
            f"{diff.max_abs_diff:.3g}",
            f"{diff.max_rel_diff:.3g}",
            f"{diff.mismatched} / {math.prod(diff.shape)}",
        ]
        for run in runs
        for diff in run.outputs
    ]
    table = plain_table(columns, rows, right={"max abs diff", "max rel diff", "mismatched"})
    return "\n".join("  " + line for line in table.splitlines())
