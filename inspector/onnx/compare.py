"""Compare a reference's arrays with onnxruntime's: the mismatch rule and its statistics (numpy only).

An element mismatches when |expected - actual| > atol + rtol * |expected| (NaN equals NaN; a
difference in shape or dtype mismatches every element).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..defaults import ATOL, RTOL


@dataclass(frozen=True)
class OutputDiff:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    mismatched: int  # elements with |torch - ort| > atol + rtol * |torch|

    def __bool__(self) -> bool:
        return self.mismatched == 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "max_abs_diff": json_float(self.max_abs_diff),
            "max_rel_diff": json_float(self.max_rel_diff),
            "mismatched": self.mismatched,
        }


def compare_arrays(
    name: str, expected, actual, *, atol: float = ATOL, rtol: float = RTOL
) -> OutputDiff:
    """Element-wise |expected - actual| > atol + rtol * |expected|, with NaN equal to NaN."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    shape = tuple(int(d) for d in expected.shape)
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return OutputDiff(name, shape, math.inf, math.inf, max(expected.size, actual.size, 1))
    if expected.size == 0:
        return OutputDiff(name, shape, 0.0, 0.0, 0)
    if expected.dtype.kind in "bOSU":  # bools and strings: equal or not, no distance
        unequal = int(np.count_nonzero(expected != actual))
        worst = math.inf if unequal else 0.0
        return OutputDiff(name, shape, worst, worst, unequal)
    want, got = expected.astype(np.float64), actual.astype(np.float64)
    finite = np.isfinite(want) & np.isfinite(got)
    # Equal infinities and NaN beside NaN agree; any other non-finite pair disagrees outright.
    agree = (np.isnan(want) & np.isnan(got)) | (want == got)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(want - got), np.where(agree, 0.0, np.inf))
        bad = np.where(finite, diff > atol + rtol * np.abs(want), ~agree)
        # Relative size only where the value is not tiny: below atol, atol is what judges it.
        sizable = finite & (np.abs(want) > max(atol, np.finfo(np.float64).tiny))
        rel = diff[sizable] / np.abs(want[sizable])
    max_rel = float(rel.max()) if rel.size else 0.0
    if (~finite & ~agree).any():
        max_rel = math.inf
    return OutputDiff(name, shape, float(diff.max()), max_rel, int(bad.sum()))


def compare_outputs(
    names: list[str],
    expected: list,
    actual: list,
    *,
    atol: float,
    rtol: float,
    sides: tuple[str, str] = ("PyTorch", "onnxruntime"),
):
    """Per-output diffs plus notes in words for what no number says (shape, dtype, count).

    `sides` names where `expected` and `actual` come from, for the notes.
    """
    diffs, notes = [], []
    for index in range(max(len(expected), len(actual))):
        name = names[index] if index < len(names) else f"output_{index}"
        if index >= len(expected) or index >= len(actual):
            side = sides[0] if index < len(expected) else sides[1]
            array = expected[index] if index < len(expected) else actual[index]
            notes.append(f"{name}: only {side} gives this output")
            diffs.append(
                OutputDiff(name, tuple(array.shape), math.inf, math.inf, max(array.size, 1))
            )
            continue
        want, got = np.asarray(expected[index]), np.asarray(actual[index])
        if want.shape != got.shape or want.dtype != got.dtype:
            notes.append(
                f"{name}: {sides[0]} gives {want.dtype}{list(want.shape)}, {sides[1]} "
                f"{got.dtype}{list(got.shape)}"
            )
        diffs.append(compare_arrays(name, want, got, atol=atol, rtol=rtol))
    return tuple(diffs), tuple(notes)


def largest_value(arrays: list) -> float | None:
    """The largest finite |value| among float outputs (None without float outputs)."""
    peaks = [
        float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))
        for a in map(np.asarray, arrays)
        if np.issubdtype(a.dtype, np.floating)
    ]
    return max(peaks, default=None)


def scale_warnings(peaks: list, atol: float) -> list[str]:
    """Outputs far below atol make a check that cannot fail (an untrained MobileNetV3 gives ~1e-9):
    say so rather than let PASSED mean nothing."""
    peaks = [peak for peak in peaks if peak is not None]
    if not peaks or max(peaks) >= 10 * atol:
        return []
    peak = max(peaks)
    return [
        f"the largest output value is {peak:.2g}, under 10 x atol ({atol:g}): "
        "differences this small can hardly fail; use a smaller --atol or real weights"
    ]


def json_float(value: float):
    # JSON has no Infinity or NaN; null marks "no finite difference" (a shape or NaN mismatch).
    return value if math.isfinite(value) else None
