"""Which precision an ONNX file computes in, read from its weights and nodes (no torch).

`verify --precision` and `verify FILE.onnx --data DIR` judge a file by it: a file with
QuantizeLinear/DequantizeLinear or QLinear* nodes is int8, else one with bfloat16 or float16
weights is bf16 or fp16, else fp32.
"""

from __future__ import annotations

from pathlib import Path

_QUANTIZED = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")


def file_precision(path) -> str:
    import onnx
    from onnx import TensorProto

    proto = onnx.load(str(Path(path)), load_external_data=False)
    ops = {node.op_type for node in proto.graph.node}
    if ops & set(_QUANTIZED) or any(op.startswith(("QLinear", "MatMulInteger")) for op in ops):
        return "int8"
    types = {tensor.data_type for tensor in proto.graph.initializer}
    if TensorProto.BFLOAT16 in types:
        return "bf16"
    if TensorProto.FLOAT16 in types:
        return "fp16"
    return "fp32"


def element_type(precision: str) -> str:
    return {"fp16": "float16", "bf16": "bfloat16", "int8": "int8"}.get(precision, "float32")
