"""A content-addressed cache of ONNX exports, so view/render/verify of an unchanged model skip export.

The key hashes everything the exported file depends on: the source files of the model's classes
and of its registry builder, the layers' settings (the module's repr), every tensor of its state
(parameters and buffers, byte for byte), its constructor arguments, the input shapes, the export
options, inspector's own export code (this folder and the code that names inputs and outputs), and
the versions of inspector, torch, onnx and onnxscript. A changed weight is a different
key, so a stale entry cannot be hit.

Location: $INSPECTOR_CACHE_DIR, else $XDG_CACHE_HOME/inspector, else ~/.cache/inspector. Entries
are `<key>.onnx` files with a `<key>.onnx.sha256` sidecar holding the key and the sha256 of their
bytes: an entry edited after it was written (or half-copied), or another entry copied under this
key's name, is made again, never used. Processes sharing the folder (pytest-xdist workers,
check-all --jobs) make each entry once, under a lock file. Deleting the folder is always safe. A
cache folder that is not writable or is full makes the command export to a temporary folder
instead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import InspectorError
from ..onnx.files import check_onnx_file, file_digest, vouch_for
from ..usermodel import inputs as input_naming
from ..usermodel import outputs as output_naming
from ..util.files import write_atomically
from ..util.leftovers import owned_folder_removed
from .exporter import ExportOptions, export_onnx, file_stem, make_export_options

if TYPE_CHECKING:
    from ..loading import LoadedModel


KEY_FORMAT = 2  # bump when the key's recipe changes


def cache_dir() -> Path:
    """Where exports are cached: $INSPECTOR_CACHE_DIR, $XDG_CACHE_HOME/inspector, ~/.cache/inspector."""
    if os.environ.get("INSPECTOR_CACHE_DIR"):
        return Path(os.environ["INSPECTOR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "inspector"


@contextmanager
def exported_model(
    loaded: LoadedModel,
    *,
    use_cache: bool = True,
    options: ExportOptions | None = None,
) -> Iterator[Path]:
    """A path to an up-to-date ONNX export of `loaded`, for verify/view/render/bench.

    `options` (default: export's defaults) are made by the caller, once; from the cache when
    possible, otherwise a temporary file removed on exit.
    """
    options = options or make_export_options()
    if use_cache:
        path = cached_export(loaded, options=options)
        if path is not None:
            yield path
            return
    cannot = "cannot make a temporary folder for the export"
    with owned_folder_removed("inspector-export-", cannot=cannot) as folder:
        path = _export(loaded, folder / f"{file_stem(loaded)}.onnx", options)
        vouch_for(path)  # checked as it was written: the caller need not check it again
        yield path


def _export(loaded: LoadedModel, path: Path, options: ExportOptions) -> Path:
    return export_onnx(loaded, path, options=options).path


def cached_export(loaded: LoadedModel, options: ExportOptions | None = None) -> Path | None:
    """The cached export of `loaded` with `options` (default: export's defaults), made now if
    missing or corrupt.

    None when the model cannot be keyed (its code has no source file) or the cache folder is not
    writable or is full; the caller then exports to a temporary file instead.
    """
    options = options or make_export_options()
    key = cache_key(loaded, options)
    if key is None:
        return None
    folder = cache_dir()
    if _writable_by_everyone(folder):
        _say_once(
            f"the export cache {folder} is writable by every user, so anyone could plant an "
            f"entry in it; not using it (make it yours alone: chmod o-w {folder})"
        )
        return None
    path = folder / f"{key}.onnx"
    if _entry_is_intact(path, key):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    try:
        with _making(path):
            if _entry_is_intact(path, key):  # another process made it while this one waited
                return path
            _remove_entry(path)  # missing, corrupt, truncated or edited: make it again
            _export(loaded, path, options)
            digest = file_digest(path)
            write_atomically(_digest_path(path), json.dumps({"key": key, "sha256": digest}))
    except (OSError, InspectorError) as error:
        if not _is_full_disk(error):
            raise
        _remove_entry(path)
        path.with_name(path.name + ".lock").unlink(missing_ok=True)  # nothing left of the attempt
        _say_once(f"the export cache {folder} is full; exporting to a temporary folder instead")
        return None
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


def _entry_is_intact(path: Path, key: str) -> bool:
    """The file is the one we wrote for this key (its sidecar names the key and a digest that
    matches) and a sound ONNX model."""
    if _writable_by_everyone(path) or _writable_by_everyone(_digest_path(path)):
        return False  # anyone could have changed it and its sidecar together: made again
    try:
        recorded = json.loads(_digest_path(path).read_text())
        if recorded["key"] != key or recorded["sha256"] != file_digest(path):
            return False
        check_onnx_file(path)
    except (OSError, ValueError, TypeError, KeyError, InspectorError):
        return False
    vouch_for(path, recorded["sha256"])  # so the command that asked for it does not check it again
    return True


def _writable_by_everyone(path: Path) -> bool:
    """Whether any user may change `path` (o+w): the cache must be its owner's alone."""
    try:
        return bool(os.stat(path).st_mode & stat.S_IWOTH)
    except OSError:  # missing: nothing to trust or distrust yet
        return False


def _is_full_disk(error: BaseException | None) -> bool:
    """A full disk or quota anywhere in the chain of causes."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__
    return False


_said: set[str] = set()


def _say_once(message: str) -> None:
    """A warning printed once per process (check-all exports many models into one cache)."""
    if message not in _said:
        _said.add(message)
        print(f"inspector: warning: {message}", file=sys.stderr)


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cache_key(loaded: LoadedModel, options: ExportOptions | None = None) -> str | None:
    """A hex digest of everything an export with `options` (default: export's defaults) depends
    on, or None when the code has no source."""
    options = options or make_export_options()
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
        # Names, shapes and dtypes shape the graph; values (and so an int input's range) do not,
        # except for tracing, which keeps the branches the given values take.
        "inputs": [[spec.name, list(spec.shape), spec.dtype] for spec in loaded.inputs],
        "constants": repr(sorted(loaded.constants.items())),
        "given": _given_digest(loaded) if options.exporter == "torchscript" else None,
        "options": [
            options.graph,
            options.opset,
            options.exporter,
            options.dynamic_batch,
            [str(dim) for dim in options.dynamic_dims],
            *_precision_recipe(options.precision),
        ],
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _precision_recipe(precision: str) -> list[str]:
    """A converted file also depends on onnxruntime's converter and quantizer."""
    if precision == "fp32":
        return []
    import onnxruntime

    return [precision, onnxruntime.__version__]


def _given_digest(loaded: LoadedModel) -> str | None:
    """The values of the inputs a user gave, which a traced export follows."""
    if loaded.given is None:
        return None
    digest = hashlib.sha256()
    for tensor in loaded.given.tensors():
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


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
    digest = hashlib.sha256()
    tensors = dict(module.named_parameters(remove_duplicate=False))
    tensors.update(module.named_buffers(remove_duplicate=False))
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _tensor_bytes(tensor):
    """A tensor's bytes for hashing: a view of its own memory, not a copy (a 100M-parameter
    model would otherwise hold each weight twice while it is hashed)."""
    import torch

    tensor = tensor.detach().cpu().contiguous()
    return tensor.reshape(-1).view(torch.uint8).numpy()


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


# Outside this folder, the code that names the file's inputs (positional `input_0..`, keyword
# names) and outputs (dict keys, ModelOutput fields, `output_0..`): a renamed output is another file.
NAMING_MODULES = (input_naming, output_naming)


def _exporter_code_digest() -> str:
    """Every file of this folder (the exporter, its passes, this cache), no list to keep by hand,
    and the naming code the exporter calls."""
    digest = hashlib.sha256()
    paths = [*sorted(Path(__file__).parent.glob("*.py"))]
    paths += [Path(module.__file__ or "") for module in NAMING_MODULES]
    for path in paths:
        digest.update(f"{path.parent.name}/{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _remove_entry(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".data"), _digest_path(path)):
        with contextlib.suppress(OSError):  # absent, or a folder we cannot write: export elsewhere
            stale.unlink()
