"""Golden test data in the ONNX model-zoo layout: DIR/test_data_set_N/input_K.pb and output_K.pb.

Each .pb is one serialized onnx.TensorProto (onnx.numpy_helper does the conversion). No torch here,
so a repository can check its model against golden data without PyTorch installed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InspectorError

_SET_NAME = re.compile(r"^test_data_set_(\d+)$")
_TENSOR_NAME = re.compile(r"^(input|output)_(\d+)\.pb$")


@dataclass
class DataSet:
    """One test case: the inputs and the outputs they must give, each with its (maybe empty) name."""

    name: str
    inputs: list = field(default_factory=list)  # numpy arrays
    outputs: list = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)


def write_test_data(folder, data_sets: list[DataSet]) -> Path:
    """Write the sets to `folder` (created), all or nothing: an existing data folder is kept."""
    folder = check_save_destination(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as error:  # a read-only folder (for root too: chattr +i, a read-only mount)
        raise InspectorError(
            f"--save-data {folder}: cannot write in {folder.parent}: {error.strerror or error}"
        ) from error
    try:
        for index, data_set in enumerate(data_sets):
            _write_set(staging / f"test_data_set_{index}", data_set)
        if folder.exists():
            folder.rmdir()  # empty (checked above): replace it with the finished folder
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def check_save_destination(folder) -> Path:
    """Refuse a data folder we must not write, before any slow work starts."""
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise InspectorError(f"--save-data {folder}: folder {folder.parent} does not exist")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InspectorError(
            f"--save-data {folder} already exists and is not an empty folder; "
            "remove it or choose another"
        )
    return folder


def read_test_data(folder) -> list[DataSet]:
    """Every test_data_set_N under `folder`, in N order, or an InspectorError saying what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InspectorError(f"--data {folder}: no such folder")
    numbered = sorted(
        (int(m.group(1)), path)
        for path in folder.iterdir()
        if path.is_dir() and (m := _SET_NAME.match(path.name))
    )
    if not numbered:
        raise InspectorError(
            f"--data {folder} holds no test_data_set_N folders "
            "(expected DIR/test_data_set_0/input_0.pb, output_0.pb)"
        )
    return [_read_set(path) for _, path in numbered]


def _write_set(folder: Path, data_set: DataSet) -> None:
    from onnx import numpy_helper

    folder.mkdir()
    for kind, arrays, names in (
        ("input", data_set.inputs, data_set.input_names),
        ("output", data_set.outputs, data_set.output_names),
    ):
        for index, array in enumerate(arrays):
            name = names[index] if index < len(names) else ""
            tensor = numpy_helper.from_array(array, name=name)
            (folder / f"{kind}_{index}.pb").write_bytes(tensor.SerializeToString())


def _read_set(folder: Path) -> DataSet:
    files: dict[str, dict[int, Path]] = {"input": {}, "output": {}}
    for path in folder.iterdir():
        if match := _TENSOR_NAME.match(path.name):
            files[match.group(1)][int(match.group(2))] = path
    data_set = DataSet(folder.name)
    for kind in ("input", "output"):
        found = files[kind]
        if not found:
            raise InspectorError(f"--data {folder} has no {kind}_0.pb")
        missing = sorted(set(range(max(found) + 1)) - set(found))
        if missing:
            raise InspectorError(f"--data {folder}: {kind}_{missing[0]}.pb is missing")
        for index in sorted(found):
            name, array = _read_tensor(found[index])
            getattr(data_set, f"{kind}s").append(array)
            getattr(data_set, f"{kind}_names").append(name)
    return data_set


def _read_tensor(path: Path):
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    tensor = onnx.TensorProto()
    try:
        tensor.ParseFromString(path.read_bytes())
        if tensor.data_type == onnx.TensorProto.UNDEFINED:
            raise ValueError("no element type")
        return tensor.name, numpy_helper.to_array(tensor)
    except (DecodeError, ValueError, TypeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InspectorError(f"{path} is not a serialized ONNX TensorProto: {reason}") from error
