"""Seeded random inputs for an ONNX model, made from its declared inputs alone (numpy, no torch).

Floats are drawn from a standard normal distribution, integers from 0..2 (the end excluded, as
MODEL OPTIONS draw them), booleans at random: never ones or zeros, which hide wrong weights. A
symbolic batch axis (axis 0) takes the size asked for; another symbolic axis takes the size the
exporter recorded in `inspector.input_shapes`, else 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INTEGER_RANGE = (0, 2)


@dataclass(frozen=True)
class InputSpec:
    """A graph input: its name, numpy dtype, and dims (an int, or a name for a symbolic axis)."""

    name: str
    dtype: np.dtype
    dims: tuple

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.dims) and not isinstance(self.dims[0], int)

    def __str__(self) -> str:
        return f"{self.dtype.name}[{','.join(str(d) for d in self.dims)}]"


def input_specs(model) -> list[InputSpec]:
    """The inputs a caller must feed (graph inputs that are not initializers), in order."""
    import onnx

    initializers = {init.name for init in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim
        )
        specs.append(InputSpec(value.name, dtype, dims))
    return specs


def recorded_shapes(model) -> list[tuple[int, ...]]:
    """The example input shapes inspector's exporter wrote into the metadata ([] when absent)."""
    text = next((p.value for p in model.metadata_props if p.key == "inspector.input_shapes"), "")
    try:
        return [tuple(int(d) for d in part.split(",") if d) for part in text.split(";") if part]
    except ValueError:
        return []


def seeded_arrays(specs: list[InputSpec], *, seed: int, batch_size: int, recorded=()) -> list:
    """One array per input, the same for the same seed, batch size and specs."""
    generator = np.random.default_rng(seed)
    arrays = []
    for index, spec in enumerate(specs):
        example = recorded[index] if index < len(recorded) else ()
        shape = tuple(_size(dim, axis, batch_size, example) for axis, dim in enumerate(spec.dims))
        arrays.append(_draw(generator, spec.dtype, shape))
    return arrays


def _size(dim, axis: int, batch_size: int, example: tuple) -> int:
    if isinstance(dim, int):
        return dim
    if axis == 0:
        return batch_size
    return example[axis] if axis < len(example) else 1


def _draw(generator, dtype: np.dtype, shape: tuple):
    if dtype == np.bool_:
        return generator.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return generator.integers(*INTEGER_RANGE, size=shape).astype(dtype)
    return generator.standard_normal(size=shape).astype(dtype)
