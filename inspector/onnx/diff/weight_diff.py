"""The weights (initializers) of two graphs compared by name, each pair once: added, removed,
reshaped, or with values out of tolerance (|a - b| > atol + rtol * |a|, as verify compares)."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..compare import compare_arrays
from .diff_report import InitializerChange


class WeightDiff:
    def __init__(self, initializers_a: dict, initializers_b: dict, atol: float, rtol: float):
        self.a, self.b = initializers_a, initializers_b
        self.atol, self.rtol = atol, rtol
        self._compared: dict[tuple[str, str], InitializerChange | None] = {}

    def changes(self) -> list[InitializerChange]:
        """Every weight that differs: A's in A's order, then those only B has."""
        found = []
        for name, init in self.a.items():
            if name not in self.b:
                found.append(InitializerChange(name, "removed", tensor_text(init), None))
            elif change := self.compare(name, name):
                found.append(change)
        found += [
            InitializerChange(name, "added", None, tensor_text(init))
            for name, init in self.b.items()
            if name not in self.a
        ]
        return found

    def compare(self, name_a: str, name_b: str) -> InitializerChange | None:
        """How A's `name_a` differs from B's `name_b` (None: equal within tolerance)."""
        key = (name_a, name_b)
        if key not in self._compared:
            self._compared[key] = self._difference(self.a[name_a], self.b[name_b])
        return self._compared[key]

    def _difference(self, init_a, init_b) -> InitializerChange | None:
        if init_a.data_type != init_b.data_type or init_a.dims != init_b.dims:
            return InitializerChange(init_b.name, "shape", tensor_text(init_a), tensor_text(init_b))
        values_a, values_b = _values(init_a, init_b)
        if values_a is None:  # the same bytes
            return None
        largest, mismatched = _difference(values_a, values_b, self.atol, self.rtol)
        if not mismatched:
            return None
        text = tensor_text(init_b)
        return InitializerChange(init_b.name, "values", text, text, largest, mismatched)


def _difference(a, b, atol: float, rtol: float) -> tuple[float, int]:
    """(max |a - b|, elements with |a - b| > atol + rtol * |a|): verify's rule.

    Float weights are compared in their own precision, which is several times faster than
    compare_arrays' float64 over millions of weights; anything else (integers, NaN or infinities
    in the difference) goes through compare_arrays itself.
    """
    if a.dtype.kind == "f" and a.dtype == b.dtype:
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a - b)
            largest = float(diff.max()) if diff.size else 0.0
            if np.isfinite(largest):
                if largest <= atol:  # no element can pass atol + rtol * |a|
                    return largest, 0
                limit = np.abs(a)
                limit *= rtol
                limit += atol
                return largest, int(np.count_nonzero(diff > limit))
    # A weight near zero is still judged against atol: own scale is for outputs that cannot fail.
    diff = compare_arrays("", a, b, atol=atol, rtol=rtol, own_scale=False, statistics=False)
    return diff.max_abs_diff, diff.mismatched


def _values(init_a, init_b):
    """Both weights as arrays, or (None, None) when they are the same tensor."""
    from onnx import numpy_helper

    # protobuf compares two messages natively; reading raw_data would copy every byte first.
    if init_a == init_b:
        return None, None
    raw_a, raw_b = init_a.raw_data, init_b.raw_data
    if raw_a and raw_a == raw_b:  # the same values under another name
        return None, None
    return _array(init_a, raw_a, numpy_helper), _array(init_b, raw_b, numpy_helper)


def _array(init, raw: bytes, numpy_helper):
    dtype = _numpy_dtype(init.data_type)
    if raw and dtype is not None and dtype.itemsize * math.prod(init.dims) == len(raw):
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(tuple(init.dims))
    return numpy_helper.to_array(init)


def tensor_text(init) -> str:
    """`float32[16,3,3,3]`."""
    return f"{_dtype_name(init.data_type)}[{','.join(map(str, init.dims))}]"


@functools.cache
def _dtype_name(data_type: int) -> str:
    dtype = _numpy_dtype(data_type)
    return dtype.name if dtype is not None else "?"


@functools.cache
def _numpy_dtype(data_type: int):
    import onnx

    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type))
    except (KeyError, TypeError, ValueError):
        return None
    # Types numpy has no kind for (bfloat16, float8) come as ml_dtypes or void: let onnx convert.
    return dtype if dtype.kind in "biuf" and dtype.name != "bfloat16" else None
