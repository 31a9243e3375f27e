"""Counts and sizes in the unit that reads best: 128, 3.96 M, 0.06 kB, never 0.00."""

from __future__ import annotations

_COUNT_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"))
_BYTE_UNITS = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def count_with_unit(count: int) -> tuple[str, str]:
    """(unit, number) for a count of parameters or mult-adds: below a million the whole number
    (`128`, `10,965`), above it two decimals in M, G or T."""
    for factor, unit in _COUNT_UNITS:
        if count >= factor:
            return unit, f"{count / factor:,.2f}"
    return "", f"{count:,}"


def bytes_with_unit(size: int) -> tuple[str, str]:
    """(unit, number) for a size in bytes: kB, MB or GB with two decimals; below 10 bytes the
    bytes themselves (`0.00 kB` would say nothing)."""
    if size < 10:
        return "B", f"{size:,}"
    for factor, unit in _BYTE_UNITS:
        if size >= factor:
            return unit, f"{size / factor:,.2f}"
    return "kB", f"{size / 1e3:,.2f}"


def labelled(label: str, pair: tuple[str, str]) -> str:
    """`Total mult-adds (M): 3.96`, or `Total mult-adds: 128` without a unit."""
    unit, number = pair
    return f"{label} ({unit}): {number}" if unit else f"{label}: {number}"
