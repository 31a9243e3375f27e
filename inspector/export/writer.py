"""Write an ONNX model into one file without holding its weights a second time in memory.

`ir.serde.serialize_model` copies every weight into the proto and `SerializeToString` copies them
again: writing a 400 MB model took 1.2 GB on top of the model itself. Here the model is serialized
without its weights (a small proto, the "shell"), and the file is assembled field by field: each
weight's bytes go from the tensor's own memory to the file (`tofile`), one tensor at a time.

Protobuf writes a message's fields in field-number order, and so does this, with the same
encoding: the file is byte for byte what `SerializeToString` of the whole model would give.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

# Field numbers in onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.raw_data.
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_RAW_DATA = 9
_LENGTH_DELIMITED = 2  # protobuf wire type of bytes and embedded messages


@contextmanager
def weights_detached(model) -> Iterator[list]:
    """Take the main graph's weights out of `model` for a while: yields [(name, tensor), ...]
    in initializer order, and puts every one back afterwards.

    `ir.serde.serialize_model` then writes the shell: everything but the initializers' data
    (their value_info stays, as in the whole model's proto).
    """
    values = [v for v in model.graph.initializers.values() if v.const_value is not None]
    weights = [(value.name, value.const_value) for value in values]
    serde_log = logging.getLogger("onnx_ir.serde")
    level = serde_log.level
    # serde warns once per initializer without a value: here that is the point.
    serde_log.setLevel(logging.ERROR)
    for value in values:
        value.const_value = None
    try:
        yield weights
    finally:
        serde_log.setLevel(level)
        for value, (_, tensor) in zip(values, weights, strict=True):
            value.const_value = tensor


def write_model(shell, weights: list, path) -> None:
    """Write `shell` (a ModelProto whose graph has no initializers) with `weights` as its graph's
    initializers, in that order, to `path`."""
    records = [_TensorRecord(name, tensor) for name, tensor in weights]
    graph_head = _fields(shell.graph, below=_GRAPH_INITIALIZER)
    graph_tail = _fields(shell.graph, above=_GRAPH_INITIALIZER)
    graph_size = len(graph_head) + len(graph_tail) + sum(r.framed_size for r in records)
    with open(path, "wb") as handle:
        handle.write(_fields(shell, below=_MODEL_GRAPH))
        handle.write(_key(_MODEL_GRAPH) + _varint(graph_size))
        handle.write(graph_head)
        for record in records:
            record.write(handle)
        handle.write(graph_tail)
        handle.write(_fields(shell, above=_MODEL_GRAPH))


class _TensorRecord:
    """One initializer as GraphProto.initializer bytes: its TensorProto fields around raw_data."""

    def __init__(self, name: str, tensor):
        import onnx

        # What ir.serde.serialize_tensor_into writes for an in-memory tensor, but raw_data.
        head = onnx.TensorProto(data_type=tensor.dtype.value, dims=tensor.shape.numpy())
        if name:
            head.name = name
        tail = onnx.TensorProto()
        if tensor.doc_string:
            tail.doc_string = tensor.doc_string
        for key in sorted(tensor.metadata_props):
            tail.metadata_props.add(key=key, value=tensor.metadata_props[key])
        self.tensor = tensor
        self.head, self.tail = head.SerializeToString(), tail.SerializeToString()
        self.data_size = tensor.nbytes
        data_key = _key(_TENSOR_RAW_DATA) + _varint(self.data_size)
        self.size = len(self.head) + len(data_key) + self.data_size + len(self.tail)
        self.prefix = _key(_GRAPH_INITIALIZER) + _varint(self.size) + self.head + data_key
        self.framed_size = len(self.prefix) + self.data_size + len(self.tail)

    def write(self, handle) -> None:
        start = handle.tell()
        handle.write(self.prefix)
        _write_data(self.tensor, handle)
        handle.write(self.tail)
        if handle.tell() - start != self.framed_size:  # a tensor whose bytes are not its nbytes
            raise ValueError(f"tensor {self.tensor.name!r} wrote a size other than its nbytes")


def _write_data(tensor, handle) -> None:
    """The tensor's little-endian bytes, straight from its memory where it can (`tofile`)."""
    if hasattr(tensor, "tofile"):
        handle.flush()  # tofile may write through the file descriptor
        tensor.tofile(handle)
    else:
        handle.write(tensor.tobytes())


def _fields(message, *, below: int | None = None, above: int | None = None) -> bytes:
    """The encoding of `message`'s fields numbered below (or above) a number."""
    part = type(message)()
    part.CopyFrom(message)
    for field, _ in message.ListFields():
        keep = field.number < below if below is not None else field.number > above
        if not keep:
            part.ClearField(field.name)
    return part.SerializeToString()


def _key(field_number: int) -> bytes:
    return _varint(field_number << 3 | _LENGTH_DELIMITED)


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint: 7 bits a byte, low bits first, high bit = more follow."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
