"""Factories for the bad files the hostile-input suite feeds to every command.

Each factory writes into a folder it is given and returns the path to hand to the CLI. ONNX files
are built with onnx.helper (no torch, no exporter), checkpoints with torch.save, so the suite does
not depend on the code it attacks.
"""

from __future__ import annotations

import os
import random
import warnings
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


# Generic bad files ------------------------------------------------------------------------------


def missing(folder: Path, name: str) -> Path:
    return folder / "does-not-exist" / name


def a_folder(folder: Path, name: str) -> Path:
    path = folder / name
    path.mkdir()
    return path


def empty(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"")
    return path


def random_bytes(folder: Path, name: str, size: int = 4096, seed: int = 7) -> Path:
    path = folder / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def lfs_pointer(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(LFS_POINTER)
    return path


def truncated(source: Path, name: str | None = None) -> Path:
    """A copy of `source` cut to half its length, next to it."""
    data = source.read_bytes()
    path = source.with_name(name or f"truncated-{source.name}")
    path.write_bytes(data[: len(data) // 2])
    return path


# ONNX -------------------------------------------------------------------------------------------


def tiny_onnx_model(weight_location: str | None = None, ir_version: int | None = None):
    """y = relu(x @ W), x: [batch, 4], W: 4x3 seeded random; W stored externally if asked."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    init = numpy_helper.from_array(weight, "W")
    if weight_location is not None:
        init.ClearField("raw_data")
        init.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", weight_location),
            ("offset", "0"),
            ("length", str(weight.nbytes)),
        ):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [init],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8 if ir_version is None else ir_version
    return model, weight


def valid_onnx(folder: Path, name: str = "tiny.onnx") -> Path:
    import onnx

    model, _ = tiny_onnx_model()
    path = folder / name
    onnx.save(model, str(path))
    return path


def onnx_ir_version_0(folder: Path, name: str = "ir0.onnx") -> Path:
    import onnx

    model, _ = tiny_onnx_model(ir_version=0)
    path = folder / name
    path.write_bytes(model.SerializeToString())
    assert onnx.load(str(path)).ir_version == 0
    return path


EXTERNAL_DATA_KINDS = ("parent", "absolute", "symlink", "hardlink")


def onnx_external_outside(folder: Path, kind: str) -> tuple[Path, Path]:
    """An ONNX file whose external weights live outside its own folder.

    Returns (model path, the outside "secret" file the model points at). The secret holds exactly
    the bytes the model expects, so a loader that follows the location would succeed silently.
    """
    model_dir = folder / f"model-{kind}"
    model_dir.mkdir()
    secret = folder / f"secret-{kind}.bin"
    _, weight = tiny_onnx_model()
    secret.write_bytes(weight.tobytes())
    if kind == "parent":
        location = f"../{secret.name}"
    elif kind == "absolute":
        location = str(secret.resolve())
    elif kind == "symlink":
        location = "weights.bin"
        (model_dir / location).symlink_to(secret.resolve())
    elif kind == "hardlink":
        location = "weights.bin"
        os.link(secret, model_dir / location)
    else:
        raise ValueError(kind)
    model, _ = tiny_onnx_model(weight_location=location)
    path = model_dir / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path, secret


def onnx_with_control_characters(folder: Path, name: str = "names.onnx") -> Path:
    """A valid model whose value and node names hold terminal escapes and other control bytes."""
    import onnx
    from onnx import TensorProto, helper

    x, hidden, y = NAMES_WITH_CONTROLS
    graph = helper.make_graph(
        [
            helper.make_node("Relu", [x], [hidden], name="relu\x1b]0;title\x07"),
            helper.make_node("Neg", [hidden], [y]),
        ],
        "controls\x0b",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / name
    onnx.save(model, str(path))
    return path


# An input that clears the screen, a value that rings the bell, an output that forges a line.
NAMES_WITH_CONTROLS = ("x\x1b[2J\x1b[H", "h\x07\x08", "y\ninspector: PASSED\x00")


# Golden test data (model-zoo layout) for tiny_onnx_model -----------------------------------------


def golden_data(folder: Path, sets: int = 1, seed: int = 3) -> Path:
    """`folder` (created) holding test_data_set_0..N-1 with input_0.pb and output_0.pb that
    tiny_onnx_model really computes."""
    import numpy as np
    from onnx import numpy_helper

    _, weight = tiny_onnx_model()
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    for index in range(sets):
        data_set = folder / f"test_data_set_{index}"
        data_set.mkdir()
        x = rng.standard_normal((2, 4)).astype(np.float32)
        for kind, array, name in (("input", x, "x"), ("output", np.maximum(x @ weight, 0), "y")):
            tensor = numpy_helper.from_array(array, name)
            (data_set / f"{kind}_0.pb").write_bytes(tensor.SerializeToString())
    return folder


def external_tensor(path: Path, location: str, values) -> Path:
    """A TensorProto file whose values, it says, are in the external file `location`."""
    from onnx import TensorProto, numpy_helper

    tensor = numpy_helper.from_array(values, "x")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(values.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(tensor.SerializeToString())
    return path


# Checkpoints ------------------------------------------------------------------------------------


class CodeRunner:
    """Unpickling this calls open(marker, "w"): it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def checkpoint_running_code(folder: Path, marker: Path, legacy: bool = False) -> Path:
    """A state_dict-looking checkpoint that would create `marker` if it were unpickled."""
    import torch

    path = folder / ("legacy-evil.pt" if legacy else "evil.pt")
    state = {"weight": torch.randn(2, 2), "bias": CodeRunner(marker)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    assert not marker.exists()
    return path


def torchscript_archive(folder: Path) -> Path:
    import torch

    path = folder / "scripted.pt"
    with warnings.catch_warnings():  # torch.jit.script is deprecated, and still what people have
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(torch.nn.ReLU()).save(str(path))
    return path


def pickled_module(folder: Path) -> Path:
    import torch

    path = folder / "whole-model.pt"
    torch.save(torch.nn.ReLU(), path)
    return path


def valid_checkpoint(folder: Path, module, name: str = "weights.pt") -> Path:
    import torch

    path = folder / name
    torch.save(module.state_dict(), path)
    return path


def cuda_checkpoint(folder: Path, module, name: str = "cuda.pt") -> Path:
    """A state_dict as saved from CUDA tensors, crafted on a CPU-only machine.

    torch.save records each storage's location as a string in data.pkl (pickle protocol 2:
    BINUNICODE with a 4-byte length, no frames or offsets), so rewriting 'cpu' to 'cuda:0' there is
    exactly what saving from the GPU would have written (the pickler memoizes the string, so it
    appears once).
    """
    import torch

    plain = folder / f"cpu-{name}"
    torch.save(module.state_dict(), plain)
    old, new = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    path = folder / name
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                assert data.count(old) == 1, "unexpected pickle layout"
                data = data.replace(old, new)
            dst.writestr(info, data)
    plain.unlink()
    return path


def safetensors_checkpoint(folder: Path, module, name: str = "weights.safetensors") -> Path:
    from safetensors.torch import save_file

    path = folder / name
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return path


# Folders ----------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every path under `folder` -> its bytes (or its kind, if not a regular file)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            state[key] = f"symlink to {os.readlink(path)}".encode()
        elif path.is_file():
            state[key] = path.read_bytes()
        else:  # a folder, or a FIFO that reading would block on
            state[key] = f"mode {path.lstat().st_mode:o}".encode()
    return state


def cli_env(**extra) -> dict[str, str]:
    """The environment for `python -m inspector` in another folder: this checkout's code wins."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **{k: str(v) for k, v in extra.items()}}
