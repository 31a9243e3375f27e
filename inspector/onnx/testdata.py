"""Golden test data in the ONNX model-zoo layout: DIR/test_data_set_N/input_K.pb and output_K.pb.

Each .pb is one serialized onnx.TensorProto (onnx.numpy_helper does the conversion). No torch here,
so a repository can check its model against golden data without PyTorch installed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InspectorError, option, raise_if_interrupted
from ..util.files import (
    check_folder_writable,
    check_name_length,
    current_umask,
    read_regular_file,
)

_SET_NAME = re.compile(r"^test_data_set_(\d+)$")
_TENSOR_NAME = re.compile(r"^(input|output)_(\d+)\.pb$")
_LISTED = 5  # names an error lists before "and N more"


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
            f"{option('--save-data', 'save_data', str(folder))}: cannot write in {folder.parent}: {error.strerror or error}"
        ) from error
    try:
        # mkdtemp makes it 0700; the finished folder is an ordinary one: the umask's mode, or
        # that of the empty folder it replaces.
        staging.chmod(_folder_mode(folder))
        for index, data_set in enumerate(data_sets):
            _write_set(staging / f"test_data_set_{index}", data_set)
        raise_if_interrupted()  # a Ctrl-C a library swallowed: nothing appears
        if folder.exists():
            folder.rmdir()  # empty (checked above): replace it with the finished folder
        staging.rename(folder)
    except OSError as error:  # a full disk, a quota
        shutil.rmtree(staging, ignore_errors=True)
        raise InspectorError(
            f"{option('--save-data', 'save_data', str(folder))}: {error.strerror or error}"
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _folder_mode(folder: Path) -> int:
    try:
        return folder.stat().st_mode & 0o777
    except OSError:
        return 0o777 & ~current_umask()


def check_save_destination(folder) -> Path:
    """Refuse a data folder we must not write, before any slow work starts."""
    folder = check_name_length(folder, option("--save-data", "save_data"))
    if not folder.parent.is_dir():
        raise InspectorError(
            f"{option('--save-data', 'save_data', str(folder))}: folder {folder.parent} does not exist"
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InspectorError(
            f"{option('--save-data', 'save_data', str(folder))} already exists and is not an empty folder; "
            "remove it or choose another"
        )
    check_folder_writable(folder.parent, option("--save-data", "save_data", str(folder)))
    return folder


# (kind, index) -> the most bytes input_K.pb / output_K.pb may hold, and why; None: no limit.
SizeLimit = Callable[[str, int], "tuple[int, str] | None"]


def read_test_data(
    folder, input_types=None, output_types=None, limit: SizeLimit | None = None
) -> list[DataSet]:
    """Every test_data_set_N under `folder`, in N order, or an InspectorError saying what is wrong.

    The folder may come from someone else's repository: only the files that exist are read, their
    indices must run 0..N-1 without gaps, and each must be a regular file inside the folder that
    holds its values itself (no external data, which would be read from wherever it points).

    `input_types`/`output_types` are the model's types as onnxruntime names them
    ("tensor(float)", "seq(tensor(int64))", "optional(tensor(int32))", "map(int64,tensor(float))"):
    a sequence's file is a SequenceProto (read as a list), an optional's an OptionalProto (None
    when empty), a map's a MapProto (a dict), as onnx's own backend runner reads them; without
    types every file is a TensorProto. A model with no inputs needs no input_0.pb. `limit` caps
    each file's size before it is read (the model's declared shapes).
    """
    folder = check_name_length(folder, option("--data", "data_dir"))
    if not folder.is_dir():
        raise InspectorError(f"{_data(folder)}: no such folder")
    root = folder.resolve()
    sets = _numbered(folder, _SET_NAME, root)
    if not sets:
        raise InspectorError(
            f"{_data(folder)} holds no test_data_set_N folders "
            "(expected DIR/test_data_set_0/input_0.pb, output_0.pb)"
        )
    for path in sets.values():
        if not path.is_dir():
            raise InspectorError(f"{_data(folder)}: {path.name} is not a folder")
    types = {"input": input_types, "output": output_types}
    ordered = _in_order(sets, folder, "test_data_set_{}")
    return [_read_set(path, root, types, limit) for path in ordered]


def _data(folder: Path) -> str:
    """The golden-data folder as its caller named it: `--data DIR` on the command line,
    `data_dir='DIR'` from Python (verify_data's parameter)."""
    return option("--data", "data_dir", str(folder))


def _numbered(folder: Path, pattern: re.Pattern, root: Path, kind: str | None = None) -> dict:
    """index -> path of the entries of `folder` whose names match `pattern` (and `kind`)."""
    found = {}
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if not match or (kind and match.group(1) != kind):
            continue
        digits = match.group(match.lastindex or 0)
        if digits != str(int(digits)):  # input_01.pb would be a second input_1.pb
            raise InspectorError(f"{_data(folder)}: {path.name} has a leading zero in its index")
        if not _inside(path, root):
            raise InspectorError(f"{_data(folder)}: {path.name} points outside {root}")
        found[int(digits)] = path
    return found


def _inside(path: Path, root: Path) -> bool:
    """True when `path`, its symbolic links followed, stays under `root` (a loop never does)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError on a symlink loop
        return False


def _in_order(found: dict, folder: Path, name: str) -> list[Path]:
    """The paths in index order when the indices are 0..N-1; else one line naming what is there."""
    indices = sorted(found)
    if indices == list(range(len(indices))):
        return [found[index] for index in indices]
    missing = next(i for i, index in enumerate(indices) if index != i)
    listed = ", ".join(found[index].name for index in indices[:_LISTED])
    more = f" and {len(indices) - _LISTED} more" if len(indices) > _LISTED else ""
    raise InspectorError(
        f"{_data(folder)}: {name.format(missing)} is missing; indices must run from 0 without "
        f"gaps (found {listed}{more})"
    )


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


def _read_set(folder: Path, root: Path, types: dict, limit: SizeLimit | None) -> DataSet:
    data_set = DataSet(folder.name)
    for kind in ("input", "output"):
        found = _numbered(folder, _TENSOR_NAME, root, kind)
        kinds = types[kind]
        if not found and kinds != []:
            raise InspectorError(f"{_data(folder)} has no {kind}_0.pb")
        for index, path in enumerate(_in_order(found, folder, kind + "_{}.pb")):
            value_type = kinds[index] if kinds and index < len(kinds) else "tensor"
            name, value = _read_value(path, value_type, limit(kind, index) if limit else None)
            getattr(data_set, f"{kind}s").append(value)
            getattr(data_set, f"{kind}_names").append(name)
    return data_set


# The proto a file holds, by the start of the type onnxruntime gives its input or output.
_PROTOS = {"seq": "SequenceProto", "optional": "OptionalProto", "map": "MapProto"}


def _read_value(path: Path, value_type: str, limit: tuple[int, str] | None = None):
    """(name, value) of one .pb file: an array, or a list, None or dict of them (see above)."""
    import onnx
    from google.protobuf.message import DecodeError

    proto_name = _PROTOS.get(value_type.split("(", 1)[0], "TensorProto")
    proto = getattr(onnx, proto_name)()
    data = read_regular_file(path, option("--data", "data_dir"), limit)
    try:
        proto.ParseFromString(data)
        if proto_name == "TensorProto" and proto.data_type == onnx.TensorProto.UNDEFINED:
            raise ValueError("no element type")
        for tensor in _tensors_in(proto):
            if tensor.data_type not in onnx.TensorProto.DataType.values():
                raise ValueError(f"unknown element type (data_type {tensor.data_type})")
    except (DecodeError, ValueError, TypeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InspectorError(f"{path} is not a serialized ONNX {proto_name}: {reason}") from error
    for tensor in _tensors_in(proto):
        _refuse_external(path, tensor, onnx)
    try:
        return proto.name, _value_of(proto, proto_name)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InspectorError(f"{path} is not a serialized ONNX {proto_name}: {reason}") from error


def _value_of(proto, proto_name: str):
    from onnx import numpy_helper

    if proto_name == "TensorProto":
        return numpy_helper.to_array(proto)
    if proto_name == "SequenceProto":
        return numpy_helper.to_list(proto)
    if proto_name == "OptionalProto":
        return numpy_helper.to_optional(proto)
    return numpy_helper.to_dict(proto)


def _tensors_in(proto):
    """Every TensorProto inside a tensor, sequence, optional or map, however deeply nested."""
    import onnx

    if isinstance(proto, onnx.TensorProto):
        yield proto
    elif isinstance(proto, onnx.SequenceProto):
        yield from proto.tensor_values
        for inner in [*proto.sequence_values, *proto.map_values, *proto.optional_values]:
            yield from _tensors_in(inner)
    elif isinstance(proto, onnx.OptionalProto):
        if proto.HasField("tensor_value"):
            yield proto.tensor_value
        for field in ("sequence_value", "map_value", "optional_value"):
            if proto.HasField(field):
                yield from _tensors_in(getattr(proto, field))
    elif isinstance(proto, onnx.MapProto):
        yield from _tensors_in(proto.values)
    else:
        raise TypeError(f"unexpected {type(proto).__name__}")


def _refuse_external(path: Path, tensor, onnx) -> None:
    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
        where = next((e.value for e in tensor.external_data if e.key == "location"), "")
        raise InspectorError(
            f"{path} keeps its values in an external file ({where or 'no location given'}); "
            "test data must hold its values itself, so it is never read"
        )
