"""Tolerances, one pair for every output or per output: `--atol 1e-4 --atol boxes=1e-2`.

A detection model's boxes are in pixels and its scores in [0, 1]: one absolute tolerance cannot
suit both, so each output may have its own. No torch here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..defaults import ATOL, PRECISION_BUDGETS, PRECISION_TOLERANCES, RTOL
from ..errors import InspectorError, option


@dataclass(frozen=True)
class Tolerances:
    """atol and rtol for every output, with per-output overrides by ONNX output name."""

    atol: float = ATOL
    rtol: float = RTOL
    atol_by_output: dict[str, float] = field(default_factory=dict)
    rtol_by_output: dict[str, float] = field(default_factory=dict)
    budget: dict[str, float] = field(default_factory=dict)  # --budget: figure -> its floor
    metrics: tuple[str, ...] = ()  # --metric: "topk=5", "cosine"
    # True where atol/rtol for every output was not given: it follows the file's precision
    atol_is_default: bool = True
    rtol_is_default: bool = True

    @classmethod
    def of(cls, atol=None, rtol=None, precision: str = "fp32") -> Tolerances:
        """From what verify() takes: a number, a {name: number} dict (the rest keep the default),
        or the CLI's list of "VALUE" / "NAME=VALUE" strings; a Tolerances passes through (its
        defaults moved to `precision`'s). None takes the default for `precision`
        (defaults.PRECISION_TOLERANCES)."""
        if isinstance(atol, Tolerances):
            return atol.at_precision(precision)
        base_atol, base_rtol = PRECISION_TOLERANCES[precision]
        default_atol, atol_by = _split(atol, base_atol, "atol")
        default_rtol, rtol_by = _split(rtol, base_rtol, "rtol")
        return cls(
            default_atol,
            default_rtol,
            atol_by,
            rtol_by,
            atol_is_default=not _gives_default(atol),
            rtol_is_default=not _gives_default(rtol),
        )

    def at_precision(self, precision: str) -> Tolerances:
        """The defaults (the tolerances not given) of a file in `precision`."""
        base_atol, base_rtol = PRECISION_TOLERANCES[precision]
        return replace(
            self,
            atol=base_atol if self.atol_is_default else self.atol,
            rtol=base_rtol if self.rtol_is_default else self.rtol,
        )

    def judging(self, precision: str, budget=None, metrics=()) -> Tolerances:
        """These tolerances with a budget (the one given, else `precision`'s default) and the
        --metric figures to measure ("topk=5", "cosine")."""
        try:
            chosen = tuple(parse_metric(str(m)) for m in metrics)
        except ValueError as error:
            raise InspectorError(f"{option('--metric', 'metrics entry')} {error}") from None
        floors = dict(budget) if budget is not None else dict(PRECISION_BUDGETS.get(precision, {}))
        for name in floors:
            if name not in BUDGET_NAMES:
                given = option(f"--budget {name}", f"budget entry {name!r}")
                raise InspectorError(f"{given}: name one of {', '.join(BUDGET_NAMES)}")
        return replace(self, budget=floors, metrics=chosen)

    def for_output(self, name: str) -> tuple[float, float]:
        return self.atol_by_output.get(name, self.atol), self.rtol_by_output.get(name, self.rtol)

    def check_names(self, names: list[str], label: str) -> None:
        """An override for an output the model does not have is a typo: refuse it (exit 2)."""
        for which, by_output in (("atol", self.atol_by_output), ("rtol", self.rtol_by_output)):
            for name in by_output:
                if name not in names:
                    close = difflib.get_close_matches(name, names, n=1)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    given = option(f"--{which} {name}=...", f"{which}[{name!r}]")
                    raise InspectorError(
                        f"{given}: {label} has no output {name!r} (its outputs: "
                        f"{', '.join(names) or 'none'}){hint}"
                    )

    def describe(self) -> str:
        """'atol 0.0001, rtol 0.001' plus the overrides: '(boxes: atol 0.01)', and the budget."""
        text = describe_pair(self.atol, self.rtol)
        if self.budget:
            text += ", budget " + ", ".join(f"{k} >= {v:g}" for k, v in self.budget.items())
        overrides = [
            f"{name}: " + ", ".join(_override(self, name))
            for name in dict.fromkeys([*self.atol_by_output, *self.rtol_by_output])
        ]
        return text + (f" ({'; '.join(overrides)})" if overrides else "")

    def to_dict(self) -> dict:
        """{name: {"atol": .., "rtol": ..}} for every output with an override."""
        names = dict.fromkeys([*self.atol_by_output, *self.rtol_by_output])
        return {
            name: dict(zip(("atol", "rtol"), self.for_output(name), strict=True)) for name in names
        }


def describe_pair(atol: float, rtol: float) -> str:
    if atol == float("inf"):
        return "no element-wise tolerance"
    return f"atol {atol:g}, rtol {rtol:g}"


BUDGET_NAMES = ("cosine", "sqnr", "pearson", "topk", "row_cosine")


def parse_budget(text: str) -> dict[str, float]:
    """'cosine=0.999,sqnr=30' -> {'cosine': 0.999, 'sqnr': 30.0}; ValueError with the reason."""
    budget = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in BUDGET_NAMES:
            raise ValueError(f"{part!r}: a budget names one of {', '.join(BUDGET_NAMES)}")
        try:
            budget[name] = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: give a number, e.g. {name}=0.999") from None
    if not budget:
        raise ValueError(f"{text!r}: give e.g. cosine=0.999,sqnr=30")
    return budget


def parse_metric(text: str) -> str:
    """'topk=5' or 'cosine'; ValueError with the reason."""
    if text == "cosine":
        return text
    name, _, value = text.partition("=")
    if name == "topk" and value.isdigit() and int(value) > 0:
        return f"topk={int(value)}"
    raise ValueError(f"{text!r}: give topk=K (K a positive integer) or cosine")


def parse_tolerance(text: str, option: str = "--atol") -> tuple[str | None, float]:
    """'1e-4' -> (None, 1e-4); 'boxes=1e-2' -> ('boxes', 1e-2); ValueError with the reason."""
    name, _, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a number or NAME=NUMBER") from None
    if not number >= 0:  # also refuses NaN
        raise ValueError(f"{text!r} must be a number >= 0")
    if "=" in text and not name:
        raise ValueError(f"{text!r}: give the output's name before '='")
    return (name or None), number


def _split(value, default: float, option: str) -> tuple[float, dict[str, float]]:
    if value is None:
        return default, {}
    if isinstance(value, (int, float)):
        return _checked(float(value), option), {}
    if isinstance(value, Mapping):
        return default, {str(k): _checked(float(v), f"{option} {k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # the CLI's repeated option: the last plain VALUE wins
        by_output = {}
        for item in value:
            name, number = _parsed(item, option)
            if name is None:
                default = number
            else:
                by_output[name] = number
        return default, by_output
    raise InspectorError(
        f"{option} takes a number or a {{output name: number}} dict, not {type(value).__name__}"
    )


def _gives_default(value) -> bool:
    """True when `value` sets the tolerance of every output (not only some outputs')."""
    if value is None or isinstance(value, Mapping):
        return False
    if isinstance(value, (list, tuple)):
        return any(_parsed(item, "tolerance")[0] is None for item in value)
    return True


def _parsed(item, option: str) -> tuple[str | None, float]:
    if isinstance(item, tuple):
        return item
    try:
        return parse_tolerance(str(item), option)
    except ValueError as error:
        raise InspectorError(f"{option} {error}") from None


def _checked(number: float, option: str) -> float:
    if not number >= 0:  # also refuses NaN
        raise InspectorError(f"{option} must be a number >= 0 (got {number})")
    return number


def _override(tolerances: Tolerances, name: str) -> list[str]:
    parts = []
    if name in tolerances.atol_by_output:
        parts.append(f"atol {tolerances.atol_by_output[name]:g}")
    if name in tolerances.rtol_by_output:
        parts.append(f"rtol {tolerances.rtol_by_output[name]:g}")
    return parts
