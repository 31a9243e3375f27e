"""onnxruntime on the CPU: open a checked ONNX model and run it, with its failures as user errors.

No torch here: `inspector verify FILE.onnx --data DIR` runs through this module alone.
"""

from __future__ import annotations

import re

from ..errors import InspectorError, option
from ..util.text import one_line

# onnxruntime prefixes every message with "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : ".
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*")

# Intra-op threads of the sessions this process opens when the caller names none (None: one per
# core). check-all --jobs N gives each worker its share, or N sessions would spin on every core.
_default_threads: int | None = None


def set_default_threads(threads: int | None) -> None:
    global _default_threads
    _default_threads = threads


ORT_OPT_LEVELS = ("disable", "basic", "all")


def open_session(
    model,
    label: str,
    *,
    threads: int | None = None,
    optimization: str = "all",
    external_data_folder=None,
):
    """An InferenceSession on CPUExecutionProvider for a path (already checked) or model bytes.

    `optimization` is onnxruntime's graph optimization level (ORT_OPT_LEVELS).
    `external_data_folder`: where model bytes' external data lie (a path's is its own folder).
    With `threads`, onnxruntime runs sequentially on that many intra-op threads (bench gives
    PyTorch the same number). A model onnxruntime cannot run (an opset or operator it does not
    implement) is the user's input problem, not a mismatch: an InspectorError with its reason.
    """
    import onnxruntime

    threads = threads if threads is not None else _default_threads
    options = onnxruntime.SessionOptions()
    # Errors only: old-opset models otherwise print a warning per session straight to stderr.
    options.log_severity_level = 3
    # --ort-opt: a mismatch can come from one of onnxruntime's graph rewrites (fusions)
    options.graph_optimization_level = getattr(
        onnxruntime.GraphOptimizationLevel,
        "ORT_DISABLE_ALL" if optimization == "disable" else f"ORT_ENABLE_{optimization.upper()}",
    )
    if external_data_folder is not None:
        options.add_session_config_entry(
            "session.model_external_initializers_file_folder_path", str(external_data_folder)
        )
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        return onnxruntime.InferenceSession(
            str(model) if not isinstance(model, bytes) else model,
            options,
            providers=["CPUExecutionProvider"],
        )
    except Exception as error:  # onnxruntime's exception classes all derive from Exception
        missing = _missing_kernel(error, model)
        if missing:
            raise InspectorError(f"{label}: {missing}") from error
        reason = _ir_version_reason(error) or f"{ort_reason(error)}{_opset_hint(model)}"
        raise InspectorError(f"onnxruntime cannot run {label}: {reason}") from error


def run_session(session, feeds: dict, label: str, output_names=None) -> list:
    """Run once and return the outputs; a refused input (wrong shape, dtype or name) is a user
    error naming the cause.

    Feeds and outputs may be of any ONNX element type, not only those numpy holds: bfloat16, the
    float8 family, float4, int4/uint4 and int2/uint2 go in and come out as ml_dtypes arrays
    (`ml_dtypes.bfloat16`, `float8_e4m3fn`, `int4`, ...), which is what `onnx.numpy_helper`
    reads and writes for them. onnxruntime's own numpy conversion refuses these types ("Numpy_type
    256 can't be converted to MLDataType") or hands float8 back as raw uint8, so such a feed
    becomes an `OrtValue` created with the ONNX element type over the array's bytes (packed
    two or four to a byte for the 4- and 2-bit types, as onnx packs them), and when an output has
    such a type the run returns `OrtValue`s whose bytes onnx converts back (`ort_value_array`).
    A type this onnxruntime cannot carry is one InspectorError naming the input and its type.
    Sequence feeds are lists of arrays and an absent optional is None, as `session.run` takes
    them; sequences come back as lists.
    """
    keep: list = []  # the buffers under the OrtValues: they must outlive the run
    fed = {name: _fed(value, name, label, keep) for name, value in feeds.items()}
    try:
        if not _needs_ort_values(session, output_names):
            return session.run(output_names, fed, quiet_run())
        names = output_names or [output.name for output in session.get_outputs()]
        values = session.run_with_ort_values(names, _as_ort_values(fed, label), quiet_run())
    except InspectorError:
        raise
    except Exception as error:
        raise InspectorError(f"onnxruntime failed to run {label}: {ort_reason(error)}") from error
    return [ort_value_array(value, name, label) for name, value in zip(names, values, strict=True)]


# Element types numpy holds itself: onnxruntime converts these both ways.
_NUMPY_TYPES = frozenset(
    f"tensor({name})"
    for name in ("float", "double", "float16", "bool", "string")
    + tuple(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64))
)


def _needs_ort_values(session, output_names) -> bool:
    wanted = set(output_names) if output_names else None
    return any(
        output.type.startswith("tensor(") and output.type not in _NUMPY_TYPES
        for output in session.get_outputs()
        if wanted is None or output.name in wanted
    )


def _fed(value, name: str, label: str, keep: list):
    """The value as onnxruntime takes it: an OrtValue for an ml_dtypes array, else itself."""
    import numpy as np

    # ml_dtypes' types are not numpy's own, whatever kind they claim (float8_e5m2 says 'f').
    if not isinstance(value, np.ndarray) or value.dtype.type.__module__ == "numpy":
        return value
    return ort_value(value, name, label, keep)


def ort_value(array, name: str, label: str, keep: list):
    """An OrtValue holding an ml_dtypes array (bfloat16, float8, float4, int4, int2, ...) with its
    ONNX element type. `keep` receives the buffer the OrtValue reads, which must outlive it."""
    import numpy as np
    import onnxruntime
    from onnx import helper, numpy_helper

    try:
        element_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        # onnx lays the values out as onnxruntime reads them (little-endian, 4- and 2-bit
        # values packed low bits first); a buffer of one byte per element (two for bfloat16)
        # and the tensor's shape is always at least as large as the packed bytes.
        raw = np.frombuffer(numpy_helper.from_array(array).raw_data, np.uint8)
        buffer = np.zeros(array.shape, np.uint16 if array.dtype.itemsize == 2 else np.uint8)
        if raw.size > buffer.nbytes:
            raise ValueError(f"{raw.size} bytes for {array.size} elements")
        buffer.reshape(-1).view(np.uint8)[: raw.size] = raw
        value = onnxruntime.OrtValue.ortvalue_from_numpy_with_onnx_type(buffer, element_type)
    except Exception as error:
        type_name = array.dtype.name
        raise InspectorError(
            f"input {name!r} of {label} is {type_name}: onnxruntime "
            f"{onnxruntime.__version__} cannot hold it ({ort_reason(error)})"
        ) from error
    keep.append(buffer)
    return value


def _as_ort_values(fed: dict, label: str) -> dict:
    import numpy as np
    import onnxruntime

    values = {}
    for name, value in fed.items():
        if isinstance(value, np.ndarray):
            value = onnxruntime.OrtValue.ortvalue_from_numpy(value)
        elif not isinstance(value, onnxruntime.OrtValue):
            raise InspectorError(
                f"input {name!r} of {label} is a {type(value).__name__}: onnxruntime takes "
                "sequences and optionals only beside outputs numpy can hold"
            )
        values[name] = value
    return values


def ort_value_array(value, name: str, label: str):
    """A tensor OrtValue as a numpy or ml_dtypes array: its bytes read back through onnx."""
    import ctypes

    import onnx
    from onnx import numpy_helper

    if not value.is_tensor():
        raise InspectorError(
            f"output {name!r} of {label} is not a tensor: onnxruntime returns sequences and "
            "optionals only beside outputs numpy can hold"
        )
    type_name = value.data_type()
    if type_name in _NUMPY_TYPES:
        return value.numpy()
    tensor = onnx.TensorProto()
    tensor.data_type = _ONNX_TYPES[type_name]
    tensor.dims.extend(value.shape())
    size = _tensor_bytes(value, tensor.data_type)
    tensor.raw_data = ctypes.string_at(value.data_ptr(), size) if size else b""
    return numpy_helper.to_array(tensor)


def _tensor_bytes(value, element_type: int) -> int:
    """The bytes behind an OrtValue: onnxruntime says so from 1.21 on; before, count them (4- and
    2-bit types are packed, the last byte half full)."""
    if hasattr(value, "tensor_size_in_bytes"):
        return value.tensor_size_in_bytes()
    import math

    from onnx import TensorProto, helper

    packed = {
        getattr(TensorProto, n): b for n, b in _PACKED_BITS.items() if hasattr(TensorProto, n)
    }
    bits = packed.get(element_type) or 8 * helper.tensor_dtype_to_np_dtype(element_type).itemsize
    return (math.prod(value.shape()) * bits + 7) // 8


# Packed element types, by name: an older onnx lacks the newer ones.
_PACKED_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}


class _OnnxTypes(dict):
    """onnxruntime's type names ("tensor(float8e4m3fn)") -> ONNX element types, built on use."""

    def __missing__(self, key: str) -> int:
        import onnx

        for name, number in onnx.TensorProto.DataType.items():
            self[f"tensor({name.lower().replace('_', '')})"] = number
        if key not in self:
            raise InspectorError(f"onnxruntime returned a {key}, which onnx cannot read")
        return self[key]


_ONNX_TYPES = _OnnxTypes()


def quiet_run():
    """Run options that keep a failing run from also printing its error natively (in red, on
    stderr): the error reaches the user as one line anyway."""
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.log_severity_level = 4  # fatal only: errors come back to us as exceptions
    return options


def feeds(session, arrays: list, label: str) -> dict:
    """Pair the model's inputs with the given arrays in order (as torch.onnx names them)."""
    inputs = session.get_inputs()
    if len(inputs) != len(arrays):
        names = ", ".join(i.name for i in inputs)
        raise InspectorError(
            f"{label} takes {len(inputs)} input(s) ({names}) but {len(arrays)} were given"
        )
    return {spec.name: array for spec, array in zip(inputs, arrays, strict=True)}


def output_names(session) -> list[str]:
    return [output.name for output in session.get_outputs()]


def ort_reason(error: BaseException) -> str:
    """onnxruntime's message without its prefix and without the C++ source location it names
    ("/onnxruntime_src/.../attention_helper.h:164 Status onnxruntime::...(...) x == y was false.")
    : that is for onnxruntime's developers; --debug still shows the whole message."""
    return _strip_source(_ORT_PREFIX.sub("", one_line(error)))


# A source path and line, then the C++ function it is in, then maybe the failed condition.
_SOURCE = re.compile(r"(?:\S*/)?[\w.-]+\.(?:h|hpp|cc|cpp|cxx|c):\d+ ")
_FAILED_CONDITION = re.compile(r"^.*? was false\. ")


def _strip_source(message: str) -> str:
    match = _SOURCE.search(message)
    if not match:
        return message
    rest = message[match.end() :]
    end = _signature_end(rest)
    if end is None:
        return message[: match.start()] + rest
    rest = rest[end:].lstrip()
    rest = _FAILED_CONDITION.sub("", rest, count=1)
    return (message[: match.start()] + rest).strip()


def _signature_end(text: str) -> int | None:
    """Where a C++ signature ("ns::f(const T&, int) const [with T = float]") ends in `text`."""
    open_at = text.find("(")
    if open_at < 0:
        return None
    depth = 0
    for index in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            end = index + 1
            for suffix in (
                re.compile(r"::<lambda\(\)>"),
                re.compile(r" const\b"),
                re.compile(r" \[with [^\]]*\]"),
            ):
                found = suffix.match(text, end)
                end = found.end() if found else end
            return end
    return None


_NO_KERNEL = re.compile(
    r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'"
)


def _missing_kernel(error: BaseException, model) -> str | None:
    """One line for an op of a bfloat16 file the CPU provider has no kernel for (most ops):
    the op, the node, and the ways out."""
    found = _NO_KERNEL.search(str(error))
    if not found or not _has_bfloat16(model):  # others keep onnxruntime's words and the opset
        return None
    op, version, node = found.groups()
    return (
        f"onnxruntime's CPU provider has no bfloat16 kernel for {op} (opset {version}, node "
        f"{node!r}); export with {option('--precision', 'precision', 'fp32')} (or fp16), "
        "or run the file on a provider "
        "that has one (CUDA)"
    )


def _has_bfloat16(model) -> bool:
    import onnx

    try:
        proto = (
            onnx.load_from_string(model)
            if isinstance(model, bytes)
            else onnx.load(str(model), load_external_data=False)
        )
    except Exception:
        return False
    bf16 = onnx.TensorProto.BFLOAT16
    typed = [*proto.graph.value_info, *proto.graph.input, *proto.graph.output]
    return any(t.data_type == bf16 for t in proto.graph.initializer) or any(
        v.type.tensor_type.elem_type == bf16 for v in typed
    )


# onnxruntime's words for a file newer than it reads (its C++ source path comes before them).
_IR_TOO_NEW = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")


def _ir_version_reason(error: BaseException) -> str | None:
    """A file written by a newer onnx than this onnxruntime reads: say so, and what to do."""
    found = _IR_TOO_NEW.search(str(error))
    if found is None:
        return None
    import onnxruntime

    have, most = found.groups()
    return (
        f"the file has ONNX IR version {have} and onnxruntime {onnxruntime.__version__} reads up "
        f"to IR version {most}: upgrade onnxruntime (pip install -U onnxruntime), or export with "
        f"an onnx release that writes IR version {most}"
    )


def _opset_hint(model) -> str:
    if isinstance(model, bytes):
        return ""
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:
        return ""
    versions = [op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")]
    return f" (the model uses opset {versions[0]})" if versions else ""
