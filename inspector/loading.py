"""MODEL spec -> an nn.Module in eval mode, with its weights and example inputs.

A spec is a registry name (`exercise_model`), `package.module:attr` or `path/to/file.py:attr`.
Importing a spec runs its code, exactly as `python file.py` would; a checkpoint never runs code
(weights_only=True, or safetensors).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import models
from .checkpoint import load_state_dict
from .errors import InspectorError
from .models._registry import BUILD_SEED

INPUT_SEED = 0
# Example inputs may take at most this share of the available memory: the model's activations and
# the exporter need the rest, and an allocation that does not fit ends in the kernel's OOM killer.
INPUT_MEMORY_SHARE = 0.5


@dataclass
class LoadedModel:
    """A model ready to inspect: the module (eval mode) and the shapes of its example inputs."""

    spec: str
    module: nn.Module
    input_shapes: list[tuple[int, ...]]
    kwargs: dict = field(default_factory=dict)
    checkpoint: str | None = None

    def example_inputs(self, batch_size: int | None = None, seed: int = INPUT_SEED):
        """Seeded random-normal inputs (never ones: they hide wrong weights and indexing)."""
        generator = torch.Generator().manual_seed(seed)
        shapes = self.input_shapes
        if batch_size is not None:
            shapes = [(batch_size, *shape[1:]) for shape in shapes]
            check_inputs_fit_in_memory(shapes, self.spec, fix="use smaller --batch-sizes")
        return tuple(torch.randn(shape, generator=generator) for shape in shapes)

    @property
    def name(self) -> str:
        """A short name for files and tables: the registry name or the attribute."""
        return self.spec.rsplit(":", 1)[-1]


def parse_kwargs(kwargs_json: str | None, pairs: list[str] | None = None) -> dict:
    """--kwargs JSON plus repeated -k key=value (value parsed as JSON when it parses)."""
    kwargs = {}
    if kwargs_json:
        try:
            kwargs = json.loads(kwargs_json)
        except json.JSONDecodeError as error:
            raise InspectorError(f"--kwargs is not valid JSON: {error}") from error
        if not isinstance(kwargs, dict):
            raise InspectorError("--kwargs must be a JSON object like '{\"arg1\": 1}'")
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InspectorError(f"-k {pair!r}: write it as key=value")
        try:
            kwargs[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            kwargs[key.strip()] = text
    return kwargs


def load_model(spec: str, *, input_shapes=None, kwargs=None, checkpoint=None) -> LoadedModel:
    """Build the model named by `spec`, load its checkpoint, and put it in eval mode."""
    kwargs = dict(kwargs or {})
    if ":" in spec:
        module = _build(_import_attr(spec), kwargs, spec)
        default_shapes = None
    else:
        entry = _registry_entry(spec)
        module = _build(lambda **kw: models.create_model(spec, **kw), kwargs, spec)
        default_shapes = entry.input_shapes
    if checkpoint is not None:
        load_state_dict(module, checkpoint)
    module.eval()
    shapes = [tuple(s) for s in input_shapes] if input_shapes else default_shapes
    if not shapes:
        raise InspectorError(
            f"{spec}: no example input shape is known; pass --input-shape, "
            "e.g. --input-shape 1,3,224,224 (once per forward argument)"
        )
    check_inputs_fit_in_memory(shapes, spec)
    return LoadedModel(spec, module, list(shapes), kwargs, checkpoint and str(checkpoint))


def check_inputs_fit_in_memory(
    shapes, spec: str, fix: str = "pass a smaller --input-shape"
) -> None:
    """Refuse float32 inputs of these shapes before allocating them, if memory cannot hold them."""
    needed = sum(math.prod(shape) for shape in shapes) * 4
    available = available_memory()
    if available is None or needed <= available * INPUT_MEMORY_SHARE:
        return
    text = ", ".join("x".join(map(str, shape)) for shape in shapes)
    raise InspectorError(
        f"{spec}: input shape {text} needs ~{needed / 2**30:.1f} GiB, "
        f"{available / 2**30:.1f} GiB available; {fix}"
    )


def available_memory() -> int | None:
    """Bytes the system can still give us (MemAvailable), or None where it cannot tell."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _registry_entry(name: str):
    try:
        return models.get_entry(name)
    except KeyError as error:
        close = difflib.get_close_matches(name, models.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see 'inspector list'"
        raise InspectorError(f"unknown model {name!r}{hint}") from error


def _import_attr(spec: str):
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise InspectorError(f"{spec!r}: write a model as module:attr or path/file.py:attr")
    module = _import_file(Path(where)) if where.endswith(".py") else _import_module(where)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InspectorError(f"{spec}: {where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def import_code(where: str):
    """Import `path/to/file.py` (run as `python file.py` would run it) or `package.module`."""
    return _import_file(Path(where)) if where.endswith(".py") else _import_module(where)


def _import_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise InspectorError(f"cannot import module {name!r}: {error}") from error
    except Exception as error:
        raise InspectorError(f"importing {name} failed: {type(error).__name__}: {error}") from error


def _import_file(path: Path):
    if not path.is_file():
        raise InspectorError(f"{path}: no such file")
    # Let the file import its neighbours (`from models import X`) as it would when run directly.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # Named after the path, the same in every process (hash() of a str is salted per process, and
    # the export cache's key includes the module name: it would never hit in a new process).
    name = f"_inspector_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as stop:  # script code at top level, e.g. argparse reading our argv
        sys.modules.pop(name, None)
        raise InspectorError(
            f"running {path} failed: it called sys.exit({stop.code!r}) while "
            "being imported; put its script code under "
            "if __name__ == '__main__':"
        ) from stop
    except Exception as error:
        sys.modules.pop(name, None)
        raise InspectorError(f"running {path} failed: {type(error).__name__}: {error}") from error
    return module


def _build(factory, kwargs: dict, spec: str) -> nn.Module:
    if isinstance(factory, nn.Module):
        if kwargs:
            raise InspectorError(f"{spec} is a module instance; it takes no constructor arguments")
        return factory
    if not callable(factory):
        raise InspectorError(
            f"{spec} is a {type(factory).__name__}, not an nn.Module class "
            "or a function returning one"
        )
    _check_kwargs(factory, kwargs, spec)
    try:
        # Seeded like the registry's models, so a user's model has the same weights on every load
        # and a file exported today verifies against the model built tomorrow.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(BUILD_SEED)
            module = factory(**kwargs)
    except InspectorError:
        raise
    except Exception as error:
        raise InspectorError(f"building {spec} failed: {type(error).__name__}: {error}") from error
    if not isinstance(module, nn.Module):
        raise InspectorError(f"{spec} returned a {type(module).__name__}, not an nn.Module")
    return module


def _check_kwargs(factory, kwargs: dict, spec: str) -> None:
    """Name a wrong constructor argument before calling, instead of a TypeError from deep inside."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**kwargs)
    except TypeError as error:
        raise InspectorError(f"{spec}: bad constructor arguments: {error}") from error
