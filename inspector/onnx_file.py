"""Open an ONNX file we were given: refuse what is not a sound model before anything runs it.

The checker works by path, so it sees external-data locations (`../`, absolute, symlinks) and
files past protobuf's 2 GB limit; onnxruntime must only ever see a file that passed it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InspectorError

_LFS_MAGIC = b"version https://git-lfs.github.com/spec"


def check_onnx_file(path) -> Path:
    """Return the path of a readable, valid ONNX model, or raise InspectorError saying why not."""
    import onnx
    from google.protobuf.message import DecodeError

    path = _existing_file(Path(path), "ONNX file")
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise InspectorError(f"{path} is not a valid ONNX model: {_first_line(error)}") from None
    except DecodeError:
        raise InspectorError(f"{path} is not an ONNX model (its bytes do not decode)") from None
    except (OSError, ValueError, RuntimeError) as error:
        raise InspectorError(f"{path} cannot be checked: {_first_line(error)}") from None
    return path


def load_onnx(path, external_data: bool = False):
    """Check, then load the model proto (without the weights by default: summaries need shapes)."""
    import onnx

    path = check_onnx_file(path)
    return onnx.load(str(path), load_external_data=external_data)


def _existing_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise InspectorError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InspectorError(f"{what} {path} is a folder, not a file")
    with path.open("rb") as handle:
        head = handle.read(len(_LFS_MAGIC))
    if not head:
        raise InspectorError(f"{what} {path} is empty")
    if head == _LFS_MAGIC:
        raise InspectorError(f"{what} {path} is a Git LFS pointer, not the model; run 'git lfs pull'")
    return path


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
