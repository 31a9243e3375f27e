"""Example inputs for forward: what the user says about them, and the seeded tensors made from it.

An input is described by an `InputSpec`, written on the command line as

    [NAME=]SHAPE[:DTYPE][:LOW..HIGH]        e.g. input_ids=2x16:int64:0..1000, or 1x3x224x224

A NAME makes it a keyword argument of forward (and the ONNX input's name); without one it is
positional. Float inputs are random-normal, integer and bool inputs uniform in LOW..HIGH (end
excluded; 0..2 by default, so ids and masks are always valid). Torch is imported only where
tensors are made, so parsing a spec costs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..errors import InspectorError, option
from ..util.text import shape_text

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INTEGER_DTYPES = ("int64", "int32", "int8", "uint8")
DTYPES = (*FLOAT_DTYPES, *INTEGER_DTYPES, "bool")
DEFAULT_RANGE = (0, 2)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


@dataclass(frozen=True)
class InputSpec:
    """One tensor input of forward: its shape, dtype, keyword name and value range."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None  # a keyword argument of forward; None: positional
    low: int | None = None  # integer values drawn from low..high-1
    high: int | None = None

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def value_range(self) -> tuple[int, int]:
        if self.low is None or self.high is None:
            return DEFAULT_RANGE
        return self.low, self.high

    def __str__(self) -> str:
        text = f"{self.name}=" if self.name else ""
        text += shape_text(self.shape) if self.shape else "scalar"
        if self.dtype != "float32":
            text += f":{self.dtype}"
        if not self.is_float and self.low is not None:
            text += f":{self.low}..{self.high}"
        return text

    def to_dict(self) -> dict:
        data = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if not self.is_float:
            data["range"] = list(self.value_range)
        return data

    def resized(self, sizes: dict[int, int]) -> InputSpec:
        """The same input with some axes (axis -> size) of another size."""
        shape = tuple(sizes.get(axis, size) for axis, size in enumerate(self.shape))
        return replace(self, shape=shape)

    def make(self, generator):
        """A seeded tensor: random-normal floats (never ones: they hide wrong weights and
        indexing), uniform integers within the range."""
        import torch

        dtype = getattr(torch, self.dtype)
        if self.is_float:
            return torch.randn(self.shape, generator=generator).to(dtype)
        low, high = self.value_range
        values = torch.randint(low, high, self.shape, generator=generator)
        return values.bool() if self.dtype == "bool" else values.to(dtype)


def parse_input(text: str) -> InputSpec:
    """`[NAME=]SHAPE[:DTYPE][:LOW..HIGH]` -> InputSpec, or a user error naming what is wrong."""
    head, sep, rest = text.partition("=")
    name: str | None = head
    if not sep:
        name, rest = None, text
    elif not _NAME.match(head.strip()):
        raise InspectorError(f"{_given(text)}: {head!r} is not a Python argument name")
    parts = rest.split(":")
    shape = _parse_shape(parts[0], text)
    dtype, value_range = "float32", None
    for part in parts[1:]:
        if _RANGE.match(part.strip()):
            value_range = _parse_range(part.strip(), text)
        elif part.strip() in DTYPES:
            dtype = part.strip()
        else:
            raise InspectorError(
                f"{_given(text)}: unknown dtype {part!r}; choose one of {', '.join(DTYPES)}"
            )
    spec = InputSpec(shape, dtype, name.strip() if name else None)
    if value_range is not None:
        if spec.is_float:
            raise InspectorError(
                f"{_given(text)}: a value range applies to integer and bool inputs; "
                f"{dtype} inputs are random-normal"
            )
        spec = replace(spec, low=value_range[0], high=value_range[1])
    return spec


def _given(text: str) -> str:
    """An input spec as its caller wrote it: `--input '2xq'` on the command line, an entry of
    `inputs` (load_model's, register_model's) from Python."""
    return option(f"--input {text!r}", f"inputs entry {text!r}")


def _parse_shape(text: str, whole: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.strip().replace("x", ",").split(","))
    except ValueError:
        raise InspectorError(
            f"{_given(whole)}: {text!r} is not a shape like 2x16 or 1,3,224,224"
        ) from None
    if any(d <= 0 for d in dims):
        raise InspectorError(f"{_given(whole)}: every dimension must be a positive integer")
    return dims


def _parse_range(text: str, whole: str) -> tuple[int, int]:
    match = _RANGE.match(text)
    if match is None:
        raise InspectorError(f"{_given(whole)}: {text!r} is not a range like 0..1000")
    low, high = int(match.group(1)), int(match.group(2))
    if high <= low:
        raise InspectorError(
            f"{_given(whole)}: range {text} is empty; write LOW..HIGH with HIGH > LOW "
            "(HIGH is excluded)"
        )
    return low, high


def spec_of(tensor, name: str | None = None) -> InputSpec:
    """The spec of a tensor the user gave: its shape and dtype, and for integers the range of the
    values it holds (so seeded stand-ins of other sizes stay valid ids)."""
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in DTYPES:
        raise InspectorError(f"input {name or ''} has dtype {dtype}, which inspector cannot make")
    spec = InputSpec(tuple(tensor.shape), dtype, name)
    if spec.is_float or dtype == "bool" or tensor.numel() == 0 or tensor.is_meta:
        return spec  # a meta tensor has no values to take a range from
    return replace(spec, low=int(tensor.min()), high=int(tensor.max()) + 1)


def onnx_input_names(specs: list[InputSpec]) -> list[str]:
    """The graph's input names: keyword inputs keep theirs, positional ones are `input` (or
    `input_0`, `input_1`, ... when there are several)."""
    positional = [spec for spec in specs if spec.name is None]
    numbered = ["input"] if len(positional) == 1 else [f"input_{i}" for i in range(len(positional))]
    counter = iter(numbered)
    return [spec.name if spec.name is not None else next(counter) for spec in specs]


@dataclass
class Inputs:
    """One call's inputs: positional tensors, keyword tensors, and keyword constants (a flag such
    as use_cache=False stays a Python value: it is not an input of the ONNX graph)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def tensors(self) -> list:
        """The tensors in the ONNX graph's input order: positional, then keyword."""
        import torch

        values = [*self.args, *self.kwargs.values()]
        return [value for value in values if isinstance(value, torch.Tensor)]

    def arrays(self) -> list:
        return [to_numpy(tensor) for tensor in self.tensors()]

    def call(self, module):
        return module(*self.args, **self.kwargs)

    def to(self, device) -> Inputs:
        """The same inputs on `device` (tensors nested in dicts, lists and tuples too)."""
        import torch
        from torch.utils._pytree import tree_map

        def move(value):
            return value.to(device) if isinstance(value, torch.Tensor) else value

        return Inputs(tree_map(move, self.args), tree_map(move, self.kwargs))

    def describe(self) -> str:
        """The shapes and dtypes, as an error message names them."""
        import torch
        from torch.utils._pytree import tree_leaves

        # Tensors inside a dict or tuple input are named by the argument that holds them.
        named = [(None, value) for value in tree_leaves(self.args)]
        named += [(key, leaf) for key, value in self.kwargs.items() for leaf in tree_leaves(value)]
        texts = [
            str(spec_of(value, name)).split(":")[0] + _dtype_suffix(value)
            for name, value in named
            if isinstance(value, torch.Tensor)
        ]
        return ", ".join(texts) or "no tensors"


def _dtype_suffix(tensor) -> str:
    dtype = str(tensor.dtype).removeprefix("torch.")
    return "" if dtype == "float32" else f" {dtype}"


def to_numpy(tensor):
    """A tensor as a numpy array; bfloat16, which numpy lacks, through ml_dtypes (as onnx does)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


@dataclass(frozen=True)
class DynamicDim:
    """`--dynamic-dim NAME.AXIS=LABEL`: that axis of that input is dynamic, named LABEL; axes with
    one label share one symbol."""

    input: str
    axis: int
    label: str

    def __str__(self) -> str:
        return f"{self.input}.{self.axis}={self.label}"


def parse_dynamic_dim(text: str) -> DynamicDim:
    where, sep, label = text.partition("=")
    name, dot, axis = where.rpartition(".")
    if not (sep and dot and name and axis.strip().isdigit() and _NAME.match(label.strip())):
        raise InspectorError(
            f"{option(f'--dynamic-dim {text!r}', f'dynamic_dims entry {text!r}')}: "
            "write NAME.AXIS=LABEL, e.g. input_ids.1=sequence"
        )
    return DynamicDim(name.strip(), int(axis), label.strip())
