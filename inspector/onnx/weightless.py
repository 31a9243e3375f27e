"""An ONNX file's graph without its weights' bytes: every initializer points at where its bytes
lie in a file (no torch).

A model with extra outputs (verify --localize's module values) must reach onnxruntime without a
copy of its weights in Python and a second one serialized: past 2 GiB protobuf cannot serialize it
at all. Here the weights stay where they are: an initializer already stored as external data keeps
its reference, and one stored inside the .onnx file becomes an external-data reference into that
same file (its offset and length), so `onnxruntime` reads the bytes from the file itself when the
weightless model's bytes are opened with the file's folder as its external-data folder.

Protobuf's Python API does not tell where a field's bytes lie in the file, so the file is walked in
protobuf's wire format (stable since protobuf 2): ModelProto.graph (field 7) ->
GraphProto.initializer (field 5) -> TensorProto.raw_data (field 9). Every other field is parsed by
onnx's own classes.
"""

from __future__ import annotations

import mmap
from pathlib import Path

_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9
# Smaller initializers stay in the graph: onnxruntime's shape inference reads their values (a
# ReduceMean's axes, a Reshape's shape) and cannot read external data (onnx's own threshold).
INLINE_BYTES = 1024
_LENGTH_DELIMITED = 2


def load_weightless(path):
    """The model in `path` with no weight bytes in memory: inline initializers become external
    data that points into `path` itself; the rest of the file is as onnx.load reads it."""
    import onnx

    path = Path(path)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if not len(data):
            return onnx.ModelProto()
        outer, graph_span = _split(data, 0, len(data), _MODEL_GRAPH)
        model = onnx.ModelProto.FromString(outer)
        if graph_span is None:
            return model
        start, end = graph_span
        rest, _ = _split(data, start, end, None, keep_out=_GRAPH_INITIALIZER)
        graph = onnx.GraphProto.FromString(rest)
        for number, begin, stop in _fields(data, start, end):
            if number == _GRAPH_INITIALIZER:
                graph.initializer.append(_initializer(data, begin, stop, path.name))
    _inline_small(graph, path.parent)
    model.graph.CopyFrom(graph)
    return model


def _inline_small(graph, folder: Path) -> None:
    """Read small initializers the file keeps as external data into the graph (INLINE_BYTES)."""
    from onnx import TensorProto
    from onnx.external_data_helper import load_external_data_for_tensor

    for tensor in graph.initializer:
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        if int(info.get("length", INLINE_BYTES)) < INLINE_BYTES:
            load_external_data_for_tensor(tensor, str(folder))
            tensor.data_location = TensorProto.DEFAULT
            del tensor.external_data[:]


def _initializer(data, start: int, end: int, file_name: str):
    """The TensorProto at data[start:end], its raw_data (unless small) an external-data reference
    into `file_name`."""
    import onnx

    kept, raw = _split(data, start, end, _TENSOR_RAW_DATA)
    if raw is None or raw[1] - raw[0] < INLINE_BYTES:
        return onnx.TensorProto.FromString(data[start:end])
    tensor = onnx.TensorProto.FromString(kept)
    offset, stop = raw
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", file_name), ("offset", offset), ("length", stop - offset)):
        tensor.external_data.add(key=key, value=str(value))
    return tensor


def _split(data, start: int, end: int, wanted: int | None, keep_out: int | None = None):
    """The bytes of every field in data[start:end] but `wanted` (and `keep_out`), and the span of
    the last `wanted` field's value (protobuf keeps the last of a non-repeated field)."""
    kept, span = [], None
    for number, begin, stop, key_at in _fields(data, start, end, with_key=True):
        if number == wanted:
            span = (begin, stop)
        elif number != keep_out:
            kept.append(data[key_at:stop])
    return b"".join(kept), span


def _fields(data, start: int, end: int, with_key: bool = False):
    """(field number, value start, value end[, key start]) of each field in data[start:end]; a
    length-delimited value's span leaves out its length."""
    pos = start
    while pos < end:
        key_at = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, stop = _varint(data, pos)
        elif wire == 1:
            stop = pos + 8
        elif wire == _LENGTH_DELIMITED:
            length, pos = _varint(data, pos)
            stop = pos + length
        elif wire == 5:
            stop = pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {key_at}")
        if stop > end:
            raise ValueError(f"a protobuf field runs past its message at byte {key_at}")
        yield (number, pos, stop, key_at) if with_key else (number, pos, stop)
        pos = stop


def _varint(data, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
