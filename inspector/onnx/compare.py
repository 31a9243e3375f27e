"""Compare a reference's arrays with onnxruntime's: the mismatch rule and its statistics (numpy only).

The rule, for float outputs (README "How verify judges an output" gives the reasons):

    |expected - actual| > atol + rtol * max(|expected|, PEAK_SHARE * peak)

where peak is the output's largest finite |expected|. Float32 rounding in a deep network is
proportional to the magnitudes it computes with, not to each element's own value, so an element
that sits near zero among values of 1e9 is judged against a hundredth of that scale rather than
against its own tiny value. An output whose values never reach 10 x atol cannot fail at atol: it is
judged at its own scale instead, with atol = rtol * peak (an all-zero output keeps atol). NaN equals NaN and infinities of the same
sign are equal; integers, bools and strings must be equal; a different shape or dtype mismatches
every element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..defaults import ATOL, PEAK_SHARE, RTOL

SMALL = 10  # an output below SMALL x atol cannot fail at atol


@dataclass(frozen=True)
class Worst:
    """The element furthest out of its tolerance: where it is and both sides' values."""

    index: tuple[int, ...]
    expected: float
    actual: float

    def to_dict(self) -> dict:
        return {
            "index": list(self.index),
            "expected": json_float(self.expected),
            "actual": json_float(self.actual),
        }


@dataclass(frozen=True)
class OutputDiff:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    mismatched: int  # elements out of tolerance (the rule above)
    mean_abs_diff: float = 0.0
    median_abs_diff: float = 0.0
    p99_abs_diff: float = 0.0
    expected_nan: int = 0  # NaN and infinities on each side: the reference (PyTorch) ...
    expected_inf: int = 0
    actual_nan: int = 0  # ... and onnxruntime
    actual_inf: int = 0
    atol: float | None = None  # the tolerances this output was judged with
    rtol: float | None = None
    peak: float | None = None  # the largest finite |expected| (None: not a float output)
    own_scale: bool = False  # below SMALL x atol, so judged with atol = rtol * peak
    required_atol: float | None = None  # when it failed: the atol that would have passed ...
    required_rtol: float | None = None  # ... or the rtol (None: none would)
    worst: Worst | None = None  # when it failed: the element furthest out of tolerance
    # Whole-output agreement (float outputs; None otherwise): see similarity() below
    cosine: float | None = None
    sqnr_db: float | None = None
    pearson: float | None = None
    metrics: dict = field(default_factory=dict)  # --metric: topk_agreement, min_row_cosine
    over_budget: tuple[str, ...] = ()  # --budget figures missed, in words

    def __bool__(self) -> bool:
        return self.mismatched == 0 and not self.over_budget

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nonfinite_expected(self) -> int:
        return self.expected_nan + self.expected_inf

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "shape": list(self.shape),
            "max_abs_diff": json_float(self.max_abs_diff),
            "mean_abs_diff": json_float(self.mean_abs_diff),
            "median_abs_diff": json_float(self.median_abs_diff),
            "p99_abs_diff": json_float(self.p99_abs_diff),
            "max_rel_diff": json_float(self.max_rel_diff),
            "mismatched": self.mismatched,
            "expected_nan": self.expected_nan,
            "expected_inf": self.expected_inf,
            "actual_nan": self.actual_nan,
            "actual_inf": self.actual_inf,
            "atol": json_float(self.atol),  # null: no element-wise tolerance (int8)
            "rtol": self.rtol,
            "max_abs_value": self.peak,
            "judged_at_own_scale": self.own_scale,
            "cosine": json_float(self.cosine),
            "sqnr_db": json_float(self.sqnr_db),
            "pearson": json_float(self.pearson),
        }
        if self.metrics:
            data["metrics"] = {key: json_float(value) for key, value in self.metrics.items()}
        if self.over_budget:
            data["over_budget"] = list(self.over_budget)
        if not self:
            data["required_atol"] = json_float(self.required_atol)
            data["required_rtol"] = json_float(self.required_rtol)
            data["worst"] = self.worst.to_dict() if self.worst else None
        return data


def compare_arrays(
    name: str,
    expected,
    actual,
    *,
    atol: float = ATOL,
    rtol: float = RTOL,
    own_scale: bool = True,
    statistics: bool = True,
) -> OutputDiff:
    """Judge `actual` against `expected` by the rule above.

    `own_scale=False` keeps atol even for values below SMALL x atol (weights, say).
    `statistics=False` leaves out the median, p99, worst element and required tolerances, for
    callers that compare hundreds of intermediate values and report one.
    """
    expected, actual = np.asarray(expected), np.asarray(actual)
    shape = tuple(int(d) for d in expected.shape)
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return _unlike(name, shape, max(expected.size, actual.size, 1), atol, rtol)
    if expected.size == 0:
        return OutputDiff(name, shape, 0.0, 0.0, 0, atol=atol, rtol=rtol)
    if not is_float(expected.dtype):
        return _compare_exactly(name, expected, actual, atol, rtol, statistics)
    return _compare_floats(name, expected, actual, atol, rtol, own_scale, statistics)


def is_float(dtype) -> bool:
    """Floats, numpy's or ml_dtypes' (bfloat16, float8: kind 'V' to numpy)."""
    return dtype.kind in "fc" or (dtype.kind == "V" and "float" in dtype.name)


def _unlike(name: str, shape, elements: int, atol: float, rtol: float) -> OutputDiff:
    inf = math.inf
    return OutputDiff(name, shape, inf, inf, elements, inf, inf, inf, atol=atol, rtol=rtol)


def _compare_exactly(name, expected, actual, atol, rtol, statistics) -> OutputDiff:
    """Integers, bools and strings: equal or not. An index off by one is wrong, whatever rtol."""
    unequal = expected != actual
    count = int(np.count_nonzero(unequal))
    max_rel = math.inf if count else 0.0
    if count and expected.dtype.kind in "iu":
        want = expected.astype(np.float64)
        distance = np.abs(want - actual.astype(np.float64))
        nonzero = want != 0
        max_rel = float(np.max(distance[nonzero] / np.abs(want[nonzero]), initial=0.0))
        max_rel = max_rel if nonzero[unequal].all() else math.inf
    else:  # no distance between two bools or strings: any difference is infinitely far
        distance = np.where(unequal, math.inf, 0.0)
    worst = None
    if count and statistics:
        index = np.unravel_index(int(np.argmax(unequal)), expected.shape)
        worst = Worst(_index(index), _item(expected[index]), _item(actual[index]))
    median, p99 = _percentiles(distance) if statistics else (0.0, 0.0)
    return OutputDiff(
        name,
        tuple(int(d) for d in expected.shape),
        float(distance.max()),
        max_rel,
        count,
        float(distance.mean()) if count else 0.0,
        median,
        p99,
        atol=atol,
        rtol=rtol,
        worst=worst,
    )


def _compare_floats(name, expected, actual, atol, rtol, own_scale, statistics) -> OutputDiff:
    want, got = expected.astype(np.float64), actual.astype(np.float64)
    counts = _nonfinite_counts(want, got)
    finite = np.isfinite(want) & np.isfinite(got)
    # Equal infinities and NaN beside NaN agree; any other non-finite pair disagrees outright.
    agree = (np.isnan(want) & np.isnan(got)) | (want == got)
    peak = float(np.max(np.abs(want), where=np.isfinite(want), initial=0.0))
    # All zeros has no scale to judge at: atol stays (and the output is blind: see blind_reason).
    small = own_scale and math.isfinite(atol) and 0 < peak < SMALL * atol
    if small:
        atol = rtol * peak
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(want - got), np.where(agree, 0.0, np.inf))
        reference = np.maximum(np.abs(want), PEAK_SHARE * peak)
        allowed = atol + rtol * reference
        bad = np.where(finite, diff > allowed, ~agree)
    mismatched = int(np.count_nonzero(bad))
    data = dict(
        atol=atol,
        rtol=rtol,
        peak=peak,
        own_scale=small,
        mean_abs_diff=float(diff.mean()),
        **counts,
        **similarity(want, got, finite),
    )
    if statistics:
        data["median_abs_diff"], data["p99_abs_diff"] = _percentiles(diff)
        if mismatched:
            data.update(_failure(want, got, diff, allowed, reference, atol, rtol, small, peak))
    return OutputDiff(
        name,
        tuple(int(d) for d in expected.shape),
        float(diff.max()),
        _max_relative(want, diff, finite, agree, atol if math.isfinite(atol) else 0.0),
        mismatched,
        **data,
    )


def similarity(want, got, finite=None) -> dict:
    """cosine similarity, SQNR and Pearson correlation of the finite elements (float64 arrays).

    SQNR (dB) = 10 log10(sum expected^2 / sum (expected - actual)^2): 20 dB is an error a tenth
    of the signal's size, 40 dB a hundredth; infinite when they are equal. Cosine is 1 for two
    all-zero outputs; Pearson is None where either side is constant.
    """
    if finite is None:
        finite = np.isfinite(want) & np.isfinite(got)
    a, b = want[finite], got[finite]
    if a.size == 0:
        return dict(cosine=None, sqnr_db=None, pearson=None)
    signal, noise, power = _dot(a, a), _dot(a - b, a - b), _dot(b, b)
    norms = math.sqrt(signal * power)
    both_zero = signal == power == 0
    cosine = _dot(a, b) / norms if norms > 0 else (1.0 if both_zero else 0.0)
    sqnr = math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal > 0 else -math.inf
    a0, b0 = a - a.mean(), b - b.mean()
    spread = math.sqrt(_dot(a0, a0) * _dot(b0, b0))
    pearson = _dot(a0, b0) / spread if spread > 0 else None
    return dict(cosine=min(cosine, 1.0), sqnr_db=sqnr, pearson=pearson)


def _dot(a, b) -> float:
    # Not np.dot: it goes to BLAS, whose threads spin against each other on a loaded machine
    # (20 ms instead of 8 us for 64,000 elements on 2 busy cores); einsum runs in this thread.
    return float(np.einsum("i,i->", a, b))


def task_metrics(want, got, metrics) -> dict:
    """--metric figures over rows (every axis but the last, the classes or features):
    topk=K: the share of rows whose expected top-1 class is among actual's top K classes;
    cosine: the smallest per-row cosine similarity (embeddings)."""
    if (
        want.ndim == 0
        or want.size == 0
        or not np.isfinite(want).all()
        or not np.isfinite(got).all()
    ):
        return {}
    a = want.reshape(-1, want.shape[-1])
    b = got.reshape(-1, got.shape[-1])
    found: dict = {}
    for metric in metrics:
        if metric.startswith("topk="):
            k = min(int(metric.split("=")[1]), a.shape[1])
            top1 = np.argmax(a, axis=1)
            topk = np.argpartition(-b, k - 1, axis=1)[:, :k]
            found["topk_agreement"] = float(np.mean(np.any(topk == top1[:, None], axis=1)))
        elif metric == "cosine":
            dots = np.einsum("ij,ij->i", a, b)
            norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                rows = np.where(norms > 0, dots / norms, 1.0)
            found["min_row_cosine"] = float(np.min(rows))
    return found


# --budget NAME=V: the figure each name stands for, and whether larger is better (all are)
BUDGET_FIGURES = {
    "cosine": "cosine",
    "sqnr": "sqnr_db",
    "pearson": "pearson",
    "topk": "topk_agreement",
    "row_cosine": "min_row_cosine",
}


def judged(diff: OutputDiff, want, got, budget: dict, metrics) -> OutputDiff:
    """`diff` with its --metric figures and the --budget figures it misses."""
    if not is_float(np.asarray(want).dtype) or np.shape(want) != np.shape(got):
        return diff
    found = task_metrics(np.asarray(want, np.float64), np.asarray(got, np.float64), metrics)
    figures = {"cosine": diff.cosine, "sqnr_db": diff.sqnr_db, "pearson": diff.pearson, **found}
    missed = []
    for name, floor in budget.items():
        value = figures.get(BUDGET_FIGURES[name])
        if value is None and BUDGET_FIGURES[name] not in figures:
            continue  # a metric this output has no rows for
        if value is None or not value >= floor:
            shown = "undefined" if value is None else f"{value:.6g}"
            missed.append(f"{name} {shown} < {floor:g}")
    return replace(diff, metrics=found, over_budget=tuple(missed))


def _max_relative(want, diff, finite, agree, atol: float) -> float:
    if (~finite & ~agree).any():
        return math.inf
    # Relative size only where the value is not tiny: below atol, atol is what judges it.
    sizable = finite & (np.abs(want) > max(atol, np.finfo(np.float64).tiny))
    if not sizable.any():
        return 0.0
    return float(np.max(diff[sizable] / np.abs(want[sizable])))


def _failure(want, got, diff, allowed, reference, atol, rtol, small, peak) -> dict:
    """The worst element, and the atol (at this rtol) or rtol (at this atol) that would pass."""
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
        index = np.unravel_index(int(np.argmax(excess)), want.shape)
        if not np.isfinite(diff).all():
            needed_atol = needed_rtol = None
        elif small:  # atol follows rtol here: only a larger rtol passes
            needed_atol = None
            needed_rtol = float(np.max(diff / (peak + reference))) if peak > 0 else None
        else:
            needed_atol = float(np.max(diff - rtol * reference))
            over = diff > atol
            needed_rtol = (
                float(np.max((diff[over] - atol) / reference[over]))
                if (reference[over] > 0).all()
                else None
            )
    return dict(
        worst=Worst(_index(index), float(want[index]), float(got[index])),
        required_atol=needed_atol,
        required_rtol=needed_rtol,
    )


def _nonfinite_counts(want, got) -> dict:
    return dict(
        expected_nan=int(np.count_nonzero(np.isnan(want))),
        expected_inf=int(np.count_nonzero(np.isinf(want))),
        actual_nan=int(np.count_nonzero(np.isnan(got))),
        actual_inf=int(np.count_nonzero(np.isinf(got))),
    )


def _percentiles(diff) -> tuple[float, float]:
    median, p99 = np.percentile(diff.ravel(), [50, 99], method="higher")
    return float(median), float(p99)


def _index(index) -> tuple[int, ...]:
    return tuple(int(i) for i in index)


def _item(value):
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, (int, float, bool)) else str(value)


def compare_outputs(
    names: list[str],
    expected: list,
    actual: list,
    *,
    atol: float = ATOL,
    rtol: float = RTOL,
    sides: tuple[str, str] = ("PyTorch", "onnxruntime"),
    tolerances=None,
):
    """Per-output diffs plus notes in words for what no number says (shape, dtype, count).

    `sides` names where `expected` and `actual` come from, for the notes. `tolerances` (a
    tolerances.Tolerances) gives each output its own atol and rtol instead of `atol`/`rtol`.
    """
    diffs, notes = [], []
    for index in range(max(len(expected), len(actual))):
        name = names[index] if index < len(names) else f"output_{index}"
        output_atol, output_rtol = tolerances.for_output(name) if tolerances else (atol, rtol)
        if index >= len(expected) or index >= len(actual):
            side = sides[0] if index < len(expected) else sides[1]
            array = expected[index] if index < len(expected) else actual[index]
            notes.append(f"{name}: only {side} gives this output")
            size = max(np.asarray(array).size, 1)
            diffs.append(_unlike(name, tuple(array.shape), size, output_atol, output_rtol))
            continue
        want, got = np.asarray(expected[index]), np.asarray(actual[index])
        if want.shape != got.shape or want.dtype != got.dtype:
            notes.append(
                f"{name}: {sides[0]} gives {want.dtype}{list(want.shape)}, {sides[1]} "
                f"{got.dtype}{list(got.shape)}"
            )
        explicit = tolerances is not None and name in tolerances.atol_by_output
        # An atol given for this output by name is the user's decision: no own-scale rule.
        diff = compare_arrays(
            name, want, got, atol=output_atol, rtol=output_rtol, own_scale=not explicit
        )
        if tolerances is not None and (tolerances.budget or tolerances.metrics):
            diff = judged(diff, want, got, tolerances.budget, tolerances.metrics)
        diffs.append(diff)
    return tuple(diffs), tuple(notes)


def blind_reason(array, atol: float) -> str | None:
    """Why an output cannot tell a right export from a wrong one at `atol`, or None when it can:
    constant (a zero-initialized head agrees with any export), or below SMALL x atol."""
    reason = constant_reason(array)
    if reason or not is_float(np.asarray(array).dtype) or not math.isfinite(atol):
        return reason
    peak = largest_value([array]) or 0.0
    if peak < SMALL * atol:
        return f"its largest value is {peak:.2g}, under {SMALL} x atol ({atol:g})"
    return None


def constant_reason(array) -> str | None:
    """'every element is 0' for a constant float output (or one without finite values)."""
    array = np.asarray(array)
    if not is_float(array.dtype) or array.size == 0:
        return None
    array = array.astype(np.float64)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return "it has no finite values"
    low, high = float(finite.min()), float(finite.max())
    return f"every element is {low:.3g}" if low == high else None


def largest_value(arrays: list) -> float | None:
    """The largest finite |value| among float outputs (None without float outputs)."""
    floats = [a.astype(np.float64) for a in map(np.asarray, arrays) if is_float(a.dtype)]
    peaks = [float(np.max(np.abs(a), where=np.isfinite(a), initial=0.0)) for a in floats]
    return max(peaks, default=None)


def scale_warnings(peaks: list, atol: float) -> list[str]:
    """Outputs far below atol (an untrained MobileNetV3 gives ~1e-9) are judged at their own scale
    (atol = rtol x their largest value); say so, since a larger --atol no longer loosens them."""
    peaks = [peak for peak in peaks if peak is not None]
    if not peaks or max(peaks) >= SMALL * atol:
        return []
    peak = max(peaks)
    return [
        f"the largest output value is {peak:.2g}, under {SMALL} x atol ({atol:g}): "
        "the outputs are judged at their own scale (atol = rtol x their largest value)"
    ]


def json_float(value):
    # JSON has no Infinity or NaN; null marks "no finite difference" (a shape or NaN mismatch).
    return value if value is None or math.isfinite(value) else None
