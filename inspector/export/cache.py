"""A content-addressed cache of ONNX exports, so view/render/verify of an unchanged model skip export.

The key hashes everything the exported file depends on: the source files of the model's classes
and of its registry builder, the layers' settings (the module's repr), every tensor of its state
(parameters and buffers, byte for byte), its constructor arguments, the input shapes, the export
options, and the versions of inspector, torch, onnx and onnxscript. A changed weight is a different
key, so a stale entry cannot be hit.

Location: $INSPECTOR_CACHE_DIR, else $XDG_CACHE_HOME/inspector, else ~/.cache/inspector. Entries
are `<key>.onnx` files with a `<key>.onnx.sha256` of their bytes: an entry edited after it was
written (or half-copied) is made again, never used. Processes sharing the folder (pytest-xdist
workers, check-all --jobs) make each entry once, under a lock file. Deleting the folder is always
safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from ..defaults import EXPORTER, GRAPH, OPSET
from ..errors import InspectorError
from ..files import write_atomically
from ..onnx.files import check_onnx_file, file_digest, vouch_for
from .exporter import export_onnx, file_stem

KEY_FORMAT = 1  # bump when the key's recipe changes


def cache_dir() -> Path:
    """Where exports are cached: $INSPECTOR_CACHE_DIR, $XDG_CACHE_HOME/inspector, ~/.cache/inspector."""
    if os.environ.get("INSPECTOR_CACHE_DIR"):
        return Path(os.environ["INSPECTOR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "inspector"


@contextmanager
def exported_model(loaded, *, graph: str = GRAPH, use_cache: bool = True) -> Iterator[Path]:
    """A path to an up-to-date ONNX export of `loaded` (default options), for verify/view/render/bench.

    From the cache when possible; otherwise a temporary file removed on exit.
    """
    if use_cache:
        path = cached_export(loaded, graph=graph)
        if path is not None:
            yield path
            return
    with tempfile.TemporaryDirectory(prefix="inspector-") as folder:
        path = export_onnx(loaded, Path(folder) / f"{file_stem(loaded)}.onnx", graph=graph).path
        vouch_for(path)  # checked as it was written: the caller need not check it again
        yield path


def cached_export(loaded, *, graph: str = GRAPH) -> Path | None:
    """The cached export of `loaded` with default options, made now if missing or corrupt.

    None when the model cannot be keyed (its code has no source file) or the cache folder is not
    writable; the caller then exports to a temporary file instead.
    """
    key = cache_key(loaded, graph=graph)
    if key is None:
        return None
    folder = cache_dir()
    path = folder / f"{key}.onnx"
    if _entry_is_intact(path):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    with _making(path):
        if _entry_is_intact(path):  # another process made it while this one waited
            return path
        _remove_entry(path)  # missing, corrupt, truncated or edited: make it again
        export_onnx(loaded, path, graph=graph)
        digest = file_digest(path)
        write_atomically(_digest_path(path), digest)
    vouch_for(path, digest)  # checked as it was written: the caller need not check it again
    return path


@contextmanager
def _making(path: Path) -> Iterator[None]:
    """One process at a time makes an entry (pytest-xdist workers, check-all --jobs, two CI steps
    sharing a cache): the others wait for it instead of exporting the same model again, and none
    removes a file another has just written and is about to use.

    An advisory lock on `<key>.onnx.lock`, released by the kernel if the holder dies. Without
    fcntl (Windows) entries are still written atomically, and the last writer wins.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        lock = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 (closed below)
    except OSError:  # a folder we may write entries in but not create this file: go unlocked
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _entry_is_intact(path: Path) -> bool:
    """The file is the one we wrote (its recorded digest matches) and a sound ONNX model."""
    try:
        recorded = _digest_path(path).read_text()
        if recorded != file_digest(path):
            return False
        check_onnx_file(path)
    except (OSError, InspectorError):
        return False
    vouch_for(path, recorded)  # so the command that asked for it does not check it a second time
    return True


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cache_key(
    loaded,
    *,
    graph: str = GRAPH,
    opset: int = OPSET,
    exporter: str = EXPORTER,
    dynamic_batch: bool = True,
) -> str | None:
    """A hex digest of everything the export depends on, or None when the code has no source."""
    code = _code_digest(loaded.module, _builder(loaded.spec))
    if code is None:
        return None
    recipe = {
        "format": KEY_FORMAT,
        "spec": loaded.spec,
        "kwargs": json.dumps(loaded.kwargs, sort_keys=True, default=repr),
        "code": code,
        # torch's own layers have no file of ours to hash: their settings (stride, padding, ...)
        # are in the module's repr.
        "layers": repr(loaded.module),
        "state": _state_digest(loaded.module),
        "input_shapes": [list(shape) for shape in loaded.input_shapes],
        "options": [graph, opset, exporter, dynamic_batch],
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _code_digest(module, builder=None) -> str | None:
    """Hash the source files of the model's classes and builder (torch's own: its version)."""
    digest = hashlib.sha256()
    classes = sorted({type(m) for m in module.modules()}, key=lambda c: c.__qualname__)
    for obj in [*classes, *([builder] if builder else [])]:
        if obj.__module__.startswith("torch."):
            continue
        try:
            source = Path(inspect.getfile(obj)).read_bytes()
        except (TypeError, OSError):
            return None  # defined in a notebook or REPL: we cannot tell when it changes
        digest.update(f"{obj.__module__}.{obj.__qualname__}\0".encode())
        digest.update(source)
    return digest.hexdigest()


def _builder(spec: str):
    """The registry function that builds `spec`, or None for module:attr specs."""
    from .. import models

    if ":" in spec:
        return None
    try:
        return models.get_entry(spec).builder
    except KeyError:
        return None


def _state_digest(module) -> str:
    """Every parameter and buffer, by name, dtype, shape and bytes."""
    import torch

    digest = hashlib.sha256()
    tensors = dict(module.named_parameters(remove_duplicate=False))
    tensors.update(module.named_buffers(remove_duplicate=False))
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # its memory, not a copy
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import onnx
    import onnxscript
    import torch

    return {
        "inspector": __version__,
        # The version alone would serve files written by older export code to a developer (or to a
        # user between releases): the code that writes the file is part of the key.
        "inspector_export_code": _exporter_code_digest(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
    }


def _exporter_code_digest() -> str:
    """Every file of this folder (the exporter, its passes, this cache): no list to keep by hand."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(f"{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _remove_entry(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".data"), _digest_path(path)):
        with contextlib.suppress(OSError):  # absent, or a folder we cannot write: export elsewhere
            stale.unlink()
