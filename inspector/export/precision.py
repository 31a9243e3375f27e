"""--precision fp16|bf16|int8: rewrite a checked float32 export in the precision users deploy.

- fp16: onnxruntime's own converter (`onnxruntime.transformers.float16`) with `keep_io_types`:
  the graph takes and returns float32 (a Cast at each edge), so the same numpy feeds and golden
  data work; ops it knows to need float32 stay float32 behind Casts of their own.
- bf16: the same conversion, then every float16 type, weight, constant and Cast made bfloat16,
  the weights rounded from their float32 originals (not twice).
- int8: `onnxruntime.quantization.quantize_static`, QDQ format, int8 weights and uint8
  activations, per tensor, MinMax calibration on CALIBRATION_SEEDS seeded inputs of the traced
  sizes (static quantization covers Conv and MatMul alike; dynamic would leave Conv in float).
  Seeded normal inputs are not the user's data: the ranges they calibrate are a proxy.

The result is checked like a float32 export: the ONNX checker (full check) and an onnxruntime
session. No torch here.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InspectorError
from ..util.text import first_line

CALIBRATION_SEEDS = 8
# Past protobuf's 2 GB limit the weights go to a .onnx.data file (as exporter.SINGLE_FILE_LIMIT)
_SINGLE_FILE_LIMIT = 1_800_000_000
ELEMENT_TYPES = {"fp16": "float16", "bf16": "bfloat16", "int8": "int8"}


def convert_file(path: Path, precision: str, calibration: list[dict] | None = None) -> list[str]:
    """Rewrite the float32 ONNX file at `path` (in a staging folder) in `precision`, in place;
    return the op types kept in float32 because their schema at this opset lacks the type.

    `calibration` (int8 only): feeds, {input name: array}, to calibrate activation ranges on.
    """
    kept: list[str] = []
    if precision == "int8":
        _quantize(path, calibration or [])
    elif precision != "fp32":
        kept = _to_half(path, precision)
    check_converted(path, precision)
    return kept


def _to_half(path: Path, precision: str) -> list[str]:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxscript import ir

    proto = onnx.load(str(path))
    originals = _float_initializers(proto) if precision == "bf16" else {}
    kept = ops_without(proto, ELEMENT_TYPES[precision])
    with _quiet("onnxruntime.transformers"):
        half = convert_float_to_float16(
            proto, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, *kept]
        )
    model = ir.serde.deserialize_model(half)
    del proto, half
    model.graph.sort()  # the converter appends the Casts it adds at the end of the node list
    for value in model.graph.initializers.values():
        # A weight it kept in float32 (for a blocked op) keeps a float16 value_info: trust the data
        if value.const_value is not None:
            value.dtype = value.const_value.dtype
    if precision == "bf16":
        _float16_to_bfloat16(model, originals)
    _save(model, path)
    return kept


def ops_without(proto, element_type: str) -> list[str]:
    """The op types of the graph whose schema, at the file's opset, takes float but not
    `element_type` ("bfloat16": Conv before opset 22): the converter keeps them in float32."""
    import onnx

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    wanted = f"tensor({element_type})"
    kept = []
    for op in dict.fromkeys(
        node.op_type for node in proto.graph.node if node.domain in ("", "ai.onnx")
    ):
        try:
            schema = onnx.defs.get_schema(op, opset or onnx.defs.onnx_opset_version(), "")
        except onnx.defs.SchemaError:
            continue
        allowed = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
        for formal in schema.inputs:
            types = allowed.get(formal.type_str, [formal.type_str])
            if "tensor(float)" in types and wanted not in types:
                kept.append(op)
                break
    return kept


def _float_initializers(proto) -> dict:
    from onnx import TensorProto, numpy_helper

    return {
        tensor.name: numpy_helper.to_array(tensor)
        for tensor in proto.graph.initializer
        if tensor.data_type == TensorProto.FLOAT
    }


def _float16_to_bfloat16(model, originals: dict) -> None:
    """Every float16 in the graph becomes bfloat16: value types, weights, constants, Casts."""
    from onnxscript import ir

    graph = model.graph
    for value in _values(graph):
        if value.dtype == ir.DataType.FLOAT16:
            value.dtype = ir.DataType.BFLOAT16
    for value in graph.initializers.values():
        tensor = value.const_value
        if tensor is not None and tensor.dtype == ir.DataType.FLOAT16:
            value.const_value = _bfloat16(originals.get(value.name), tensor, value.name)
            value.dtype = ir.DataType.BFLOAT16
    for node in graph:
        for name, attribute in node.attributes.items():
            if name == "to" and node.op_type == "Cast" and attribute.value == ir.DataType.FLOAT16:
                node.attributes["to"] = ir.AttrInt64("to", ir.DataType.BFLOAT16)
            elif attribute.type == ir.AttributeType.TENSOR:
                tensor = attribute.value
                if tensor.dtype == ir.DataType.FLOAT16:
                    node.attributes[name] = ir.AttrTensor(name, _bfloat16(None, tensor, name))


def _values(graph) -> Iterator:
    yield from graph.inputs
    for node in graph:
        yield from node.outputs


def _bfloat16(original, tensor, name: str):
    import ml_dtypes
    import numpy as np
    from onnxscript import ir

    source = original if original is not None else tensor.numpy().astype(np.float32)
    return ir.Tensor(np.asarray(source).astype(ml_dtypes.bfloat16), name=name)


def _quantize(path: Path, calibration: list[dict]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._feeds = iter(calibration)

        def get_next(self):
            return next(self._feeds, None)

    # Written under the same basename in a folder of its own: a .onnx.data file is found by it.
    folder = path.parent / "int8"
    folder.mkdir()
    quantized = folder / path.name
    large = _file_bytes(path) > _SINGLE_FILE_LIMIT
    try:
        with _quiet("root"):  # "Please consider pre-processing before quantization"
            quantize_static(
                str(path),
                str(quantized),
                Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                use_external_data_format=large,
            )
    except Exception as error:  # onnxruntime's classes derive from Exception
        raise InspectorError(
            f"onnxruntime's quantize_static failed on the float32 export: {first_line(error)}"
        ) from error
    _replace(folder, path)


def _save(model, path: Path) -> None:
    from onnxscript import ir

    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    size = sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value)
    try:
        if size > _SINGLE_FILE_LIMIT:
            ir.save(model, path, external_data=data.name)
        else:
            ir.save(model, path)
    except OSError as error:
        raise InspectorError(f"cannot write {path.name}: {error.strerror or error}") from error


def _replace(folder: Path, path: Path) -> None:
    """Move folder/<name> (and its .data) over path (and its .data)."""
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    for each in folder.iterdir():
        if each.name in (path.name, data.name):
            os.replace(each, path.parent / each.name)
    shutil.rmtree(folder, ignore_errors=True)


def _file_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def check_converted(path: Path, precision: str) -> None:
    """The ONNX checker by path (full check), then an onnxruntime session on the CPU.

    A bfloat16 file the CPU provider has no kernel for is still a file for other providers:
    that refusal is left to whoever runs it (verify says it in one line); anything else fails.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise InspectorError(
            f"the {precision} conversion fails the ONNX checker: {first_line(error)}"
        ) from error
    from ..onnx.runtime import open_session

    try:
        open_session(path, path.name)
    except InspectorError as error:
        if precision == "bf16" and "CPU provider has no" in str(error):
            return
        raise InspectorError(f"the {precision} conversion: {error}") from error


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    log = logging.getLogger(None if name == "root" else name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
