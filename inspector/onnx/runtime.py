"""onnxruntime on the CPU: open a checked ONNX model and run it, with its failures as user errors.

No torch here: `inspector verify FILE.onnx --data DIR` runs through this module alone.
"""

from __future__ import annotations

import re

from ..errors import InspectorError
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


def open_session(model, label: str, *, threads: int | None = None, optimization: str = "all"):
    """An InferenceSession on CPUExecutionProvider for a path (already checked) or model bytes.

    `optimization` is onnxruntime's graph optimization level (ORT_OPT_LEVELS).
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
        raise InspectorError(
            f"onnxruntime cannot run {label}: {ort_reason(error)}{_opset_hint(model)}"
        ) from error


def run_session(session, feeds: dict, label: str, output_names=None) -> list:
    """Run once; a refused input (wrong shape, dtype or name) is a user error naming the cause."""
    try:
        return session.run(output_names, feeds, quiet_run())
    except Exception as error:
        raise InspectorError(f"onnxruntime failed to run {label}: {ort_reason(error)}") from error


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
    return _ORT_PREFIX.sub("", one_line(error))


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
        f"{node!r}); export with --precision fp32 (or fp16), or run the file on a provider "
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
