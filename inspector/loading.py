"""MODEL spec + input specs -> a LoadedModel: the nn.Module in eval mode, its weights, and its
typed, named example inputs.

A spec is a registry name (`exercise_model`), `package.module:attr` or `path/to/file.py:attr`.
Importing a spec runs its code, exactly as `python file.py` would; a checkpoint never runs code
(weights_only=True, or safetensors).
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import models
from .defaults import INPUT_SEED
from .errors import InspectorError, naming_flags, option
from .models._registry import BUILD_SEED
from .usermodel.candidates import missing_attr_error
from .usermodel.checkpoint import load_state_dict
from .usermodel.importing import import_attr
from .usermodel.inputs import Inputs, InputSpec, parse_input, spec_of
from .usermodel.meta import build_on_meta, fits_in_memory, weight_bytes
from .usermodel.outputs import register_output_types
from .usermodel.usercode import user_code
from .util.files import file_kind
from .util.inductor import inductor_cache_removed
from .util.memory import available_memory
from .util.progress import step
from .util.text import shape_text

# Example inputs may take at most this share of the available memory: the model's activations and
# the exporter need the rest, and an allocation that does not fit ends in the kernel's OOM killer.
INPUT_MEMORY_SHARE = 0.5
# Python values forward may take besides tensors (use_cache=False); they are not graph inputs.
CONSTANT_TYPES = (type(None), bool, int, float, str)
# Keyword arguments of a factory that name the model it builds (timm's create_model).
_MODEL_NAME_KWARGS = ("model_name", "name", "arch", "model")
_CATCH_ALL = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass
class LoadedModel:
    """A model ready to inspect: the module (eval mode) and what its forward takes."""

    spec: str
    module: nn.Module
    inputs: list[InputSpec]
    kwargs: dict = field(default_factory=dict)  # the constructor's
    checkpoint: str | None = None
    constants: dict = field(default_factory=dict)  # forward's non-tensor keyword arguments
    given: Inputs | None = None  # the very inputs given (--inputs, or tensors from Python)

    def __post_init__(self):
        # A bare shape is a float32 positional input, as LoadedModel(spec, module, [(1, 3)]).
        self.inputs = [s if isinstance(s, InputSpec) else InputSpec(tuple(s)) for s in self.inputs]
        register_output_types(self.module)

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [spec.shape for spec in self.inputs]

    @property
    def name(self) -> str:
        """A short name for files and tables: the registry name, the attribute, or the model a
        factory was asked for (`timm:create_model -k model_name=resnet18` -> resnet18)."""
        for key in _MODEL_NAME_KWARGS:
            if isinstance(self.kwargs.get(key), str) and self.kwargs[key].strip():
                return self.kwargs[key].strip()
        return self.spec.rsplit(":", 1)[-1]

    def first_inputs(self) -> Inputs:
        """The inputs given, or else the seeded example inputs."""
        return self.given if self.given is not None else self.example_inputs()

    def example_inputs(
        self, batch_size: int | None = None, seed: int = INPUT_SEED, sizes: dict | None = None
    ) -> Inputs:
        """Seeded inputs of the example's dtypes and ranges: axis 0 of every input at
        `batch_size` when given, and `sizes` ((input index, axis) -> size) on other axes."""
        specs = self.resized_inputs(batch_size, sizes)
        if batch_size is not None or sizes:
            check_inputs_fit_in_memory(specs, self.spec, fix=_smaller_batch_sizes())
        generator = torch.Generator().manual_seed(seed)
        args = tuple(spec.make(generator) for spec in specs if spec.name is None)
        kwargs = {spec.name: spec.make(generator) for spec in specs if spec.name is not None}
        return Inputs(args, {**kwargs, **self.constants})

    def resized_inputs(self, batch_size: int | None = None, sizes: dict | None = None):
        sizes = dict(sizes or {})
        resized = []
        for index, spec in enumerate(self.inputs):
            axes = {axis: size for (i, axis), size in sizes.items() if i == index}
            if batch_size is not None and spec.shape:
                axes.setdefault(0, batch_size)
            resized.append(spec.resized(axes))
        return resized


# Importing torch._dynamo makes torch's cache folder: a meta probe does, and so does registering a
# transformers model's output types (its modeling code imports torch._dynamo).
@inductor_cache_removed()
def load_model(
    spec: str | nn.Module,
    *,
    inputs: Sequence[Any] | Mapping[str, Any] | torch.Tensor | None = None,
    input_shapes: Sequence[Sequence[int]] | None = None,
    inputs_factory: str | None = None,
    kwargs: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    inputs_required: bool = True,
    meta: bool | None = False,
) -> LoadedModel:
    """Build the model named by `spec` (or take the nn.Module given), load its checkpoint, and put
    a model it built in eval mode (a module given keeps its training flags: inspector runs it in
    eval mode and gives every layer its own flag back).

    Args:
        spec: a registry name (`"exercise_model"`), `"package.module:attr"`,
            `"path/to/file.py:attr"` (a class or a function returning an nn.Module), or an
            nn.Module built in Python.
        inputs: the example inputs as SPEC strings (`"input_ids=2x16:int64:0..1000"`,
            `"1x3x224x224"`), InputSpecs or tensors; a dict for keyword inputs.
        input_shapes: float32 example input shapes, one per forward argument.
        inputs_factory: `"module:fn"` or `"file.py:fn"` returning a tensor, a tuple, a dict or
            (tuple, dict). Give the inputs one way at most; with none, a registry model's own.
        kwargs: the constructor's (or factory's) keyword arguments.
        checkpoint: a state_dict file (.pt/.pth, read with weights_only=True, or .safetensors).
        inputs_required: False lets a model without example inputs load (a summary then lists
            its parameters).
        meta: True builds the model on PyTorch's meta device (shapes without storage: enough
            for a summary); None does so only when its weights would not fit in memory.

    Returns:
        A LoadedModel: the module, its typed and named example inputs, and where they came from.

    Raises:
        InspectorError: an unknown model, bad constructor arguments, inputs forward does not
            take, a checkpoint that does not fit.
    """
    kwargs = dict(kwargs or {})
    if isinstance(inputs, Mapping):  # a tokenizer's BatchEncoding is a mapping, not a dict
        inputs = dict(inputs)
    given_ways = [w for w in (inputs, input_shapes, inputs_factory) if w]
    if len(given_ways) > 1:
        ways = option(
            "--input, --input-shape or --inputs", "inputs, input_shapes or inputs_factory"
        )
        raise InspectorError(f"give the example inputs one way: {ways}, not several")
    built = not isinstance(spec, nn.Module)
    label = spec if isinstance(spec, str) else type(spec).__name__
    with step(f"loading {label}"):
        spec, module, default = _module_and_default_inputs(spec, kwargs, meta)
        if checkpoint is not None:
            load_state_dict(module, checkpoint)
    if built:  # ours to set; a caller's module keeps its flags (every run is in eval_mode)
        module.eval()
    loaded = LoadedModel(spec, module, [], kwargs, str(checkpoint) if checkpoint else None)
    if inputs_factory:
        _use_given(loaded, _call_factory(inputs_factory))
    elif inputs is not None and _holds_tensors(inputs):
        _use_given(loaded, _as_given(inputs))
    elif inputs or input_shapes or default:
        specs = _specs(inputs) if inputs else [InputSpec(tuple(s)) for s in input_shapes or []]
        loaded.inputs = _in_forward_order(module, specs or _specs(default), spec)
    if not loaded.inputs and loaded.given is None and inputs_required:
        raise InspectorError(f"{spec}: no example input is known; {_how_to_give_inputs()}")
    if loaded.inputs or loaded.given is not None:
        check_forward_takes(loaded)
    check_inputs_fit_in_memory(loaded.inputs, spec)
    return loaded


def _specs(items) -> list[InputSpec]:
    if isinstance(items, dict):
        items = [
            f"{name}={text}" if isinstance(text, str) else text for name, text in items.items()
        ]
    return [item if isinstance(item, InputSpec) else parse_input(str(item)) for item in items]


def _in_forward_order(module, specs: list[InputSpec], spec: str) -> list[InputSpec]:
    """Positional inputs first, in the order given; keyword inputs in forward's own order (the
    order the exporter gives the graph's inputs), each name once."""
    named = [s for s in specs if s.name is not None]
    names = [s.name for s in named if s.name is not None]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InspectorError(f"{spec}: input {twice[0]!r} is given twice")
    order = list(_forward_parameters(module))
    named.sort(key=lambda s: order.index(s.name) if s.name in order else len(order))
    return [s for s in specs if s.name is None] + named


def _forward_parameters(module) -> dict:
    try:
        return dict(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return {}


def check_forward_takes(loaded: LoadedModel) -> None:
    """A keyword input forward does not take, or more positional inputs than it has, is named
    here, before any run, instead of as a TypeError from deep inside."""
    try:
        signature = inspect.signature(loaded.module.forward)
    except (TypeError, ValueError):
        return
    positional: list = [spec for spec in loaded.inputs if spec.name is None]
    keywords: dict = {spec.name: spec for spec in loaded.inputs if spec.name is not None}
    if loaded.given is not None:  # the very values, dicts and tuples as they are
        positional, keywords = (
            list(loaded.given.args),
            {k: v for k, v in loaded.given.kwargs.items() if k not in loaded.constants},
        )
    taken = ", ".join(signature.parameters) or "nothing"
    try:
        signature.bind(*positional, **keywords, **loaded.constants)
    except TypeError as error:
        raise InspectorError(
            f"{loaded.spec}: forward({taken}) does not take these inputs: {error}"
        ) from error
    # A **kwargs catch-all (transformers' forward has one) would swallow a misspelt name.
    named = [p.name for p in signature.parameters.values() if p.kind not in _CATCH_ALL]
    unknown = [name for name in [*keywords, *loaded.constants] if name not in named]
    if named and unknown:
        raise InspectorError(
            f"{loaded.spec}: forward({taken}) has no argument {unknown[0]!r}; name inputs after "
            "its arguments"
        )


def _how_to_give_inputs() -> str:
    if naming_flags():
        return (
            "pass --input (e.g. --input 1x3x224x224, or --input input_ids=2x16:int64:0..1000 "
            "per keyword input) or --input-shape"
        )
    return (
        "pass inputs= (tensors, or specs like '1x3x224x224' or "
        "{'input_ids': '2x16:int64:0..1000'}) or input_shapes="
    )


def _call_factory(factory_spec: str) -> Inputs:
    """`--inputs module:fn`: call fn() under the input seed; accept a tensor, a tuple of
    positional inputs, a dict of keyword inputs, or a (tuple, dict) pair."""
    factory = import_attr(factory_spec, what="an inputs function")
    given = option("--inputs", "inputs_factory", factory_spec)
    if not callable(factory):
        raise InspectorError(f"{given} is a {type(factory).__name__}, not a function")
    calling = user_code(given, "the inputs function", failure=f"{given} failed")
    with calling, torch.random.fork_rng(devices=[]):
        torch.manual_seed(INPUT_SEED)
        value = factory()
    return _as_given(value, given)


def _as_given(value, where: str = "inputs") -> Inputs:
    if isinstance(value, torch.Tensor):
        value = (value,)
    if isinstance(value, Mapping):  # a tokenizer's BatchEncoding too
        value = ((), dict(value))
    if isinstance(value, list):
        value = tuple(value)
    pair = (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], (tuple, list))
        and isinstance(value[1], dict)
    )
    args, kwargs = (tuple(value[0]), dict(value[1])) if pair else (value, {})
    if not isinstance(args, tuple):
        raise InspectorError(
            f"{where} gave a {type(value).__name__}; return a tensor, a tuple, a dict, "
            "or (tuple, dict)"
        )
    for item in args:
        if not isinstance(item, (torch.Tensor, *_CONTAINERS)):
            raise InspectorError(
                f"{where}: positional input {value_text(item)} is no tensor; positional inputs "
                "are tensors, or dicts, lists and tuples of them (pass Python values as keywords)"
            )
    for key, item in kwargs.items():
        if not _is_input_value(item):
            raise InspectorError(
                f"{where}: keyword input {key!r} is {value_text(item)}; give tensors, "
                "None/bool/int/float/str constants, or dicts, lists and tuples of these"
            )
    return Inputs(args, kwargs)


_CONTAINERS = (dict, list, tuple)  # a namedtuple is a tuple


def _is_input_value(value) -> bool:
    """A tensor, a constant, or a dict, list or tuple (a namedtuple too) of these, as torchinfo
    and forward take them."""
    if isinstance(value, (torch.Tensor, *CONSTANT_TYPES)):
        return True
    items = value.values() if isinstance(value, dict) else value
    return isinstance(value, _CONTAINERS) and all(_is_input_value(v) for v in items)


def value_text(value) -> str:
    """A value as an error line names it: a tensor's dtype and shape, a container's type and
    length, never a repr cut mid-number."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"a {dtype} tensor of shape {shape_text(value.shape)}"
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    if isinstance(value, _CONTAINERS):
        return f"{article} {name} of {len(value)}"
    return f"{article} {name}"


def _holds_tensors(inputs) -> bool:
    """Values to call forward with (tensors, or dicts and tuples such as ({},)), not specs."""
    if isinstance(inputs, torch.Tensor):
        return True
    values = inputs.values() if isinstance(inputs, dict) else inputs
    return any(isinstance(v, (torch.Tensor, *_CONTAINERS)) for v in values)


def _use_given(loaded: LoadedModel, given: Inputs) -> None:
    """Given tensors: they are one run, and their specs (shape, dtype, value range) make the
    seeded stand-ins of other sizes."""
    from torch.utils._pytree import tree_leaves

    loaded.given = given
    # Tensors inside a dict or tuple input are listed one by one (the summary's input shapes).
    loaded.inputs = [spec_of(t) for t in tree_leaves(given.args) if isinstance(t, torch.Tensor)]
    loaded.inputs += [spec_of(v, k) for k, v in given.kwargs.items() if isinstance(v, torch.Tensor)]
    loaded.constants = {k: v for k, v in given.kwargs.items() if not isinstance(v, torch.Tensor)}


def as_loaded(
    model: LoadedModel | str | nn.Module,
    args: tuple = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    caller: str,
) -> LoadedModel:
    """What every function that takes a MODEL does with it (verify, benchmark, diff): a
    LoadedModel as it is, a MODEL spec loaded, an nn.Module with its example inputs (`args`,
    `kwargs`) wrapped, or with none loaded as load_model(module) loads it."""
    if isinstance(model, LoadedModel):
        if args or kwargs:
            raise InspectorError(
                f"{caller}(LoadedModel) takes no example inputs: give them to "
                "load_model(..., inputs=[...]) instead"
            )
        return model
    if isinstance(model, str):
        if args or kwargs:
            raise InspectorError(
                f"{caller}(MODEL spec) takes no example inputs: give them to "
                "load_model(..., inputs=[...]) instead"
            )
        return load_model(model)
    if isinstance(model, nn.Module):
        if args or kwargs:
            return loaded_from_module(model, tuple(args), dict(kwargs or {}))
        return load_model(model)
    raise InspectorError(
        f"{caller}() takes an nn.Module, a LoadedModel or a MODEL spec, not {type(model).__name__}"
    )


def loaded_from_module(module: nn.Module, args: tuple, kwargs: dict) -> LoadedModel:
    """The Python API's `verify(module, *args, **kwargs)`: a LoadedModel around given inputs."""
    if not args and not kwargs:
        raise InspectorError(
            "give the module's example inputs: verify(module, *args, **kwargs), one tensor per "
            "forward argument"
        )
    loaded = LoadedModel(type(module).__name__, module, [])
    _use_given(loaded, _as_given((tuple(args), dict(kwargs)), type(module).__name__))
    check_forward_takes(loaded)
    return loaded


def parse_kwargs(kwargs_json: str | None, pairs: list[str] | None = None) -> dict:
    """--kwargs JSON plus repeated -k key=value (value parsed as JSON when it parses)."""
    kwargs = {}
    if kwargs_json:
        try:
            kwargs = json.loads(kwargs_json)
        except json.JSONDecodeError as error:
            raise InspectorError(f"--kwargs is not valid JSON: {error}") from error
        except RecursionError as error:
            raise InspectorError(
                "--kwargs is nested too deeply to be constructor arguments"
            ) from error
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
        except RecursionError as error:
            raise InspectorError(f"-k {key.strip()}: the value is nested too deeply") from error
    return kwargs


def _smaller_batch_sizes() -> str:
    return "use smaller " + option("--batch-sizes", "batch_sizes")


def check_inputs_fit_in_memory(specs, spec: str, fix: str | None = None) -> None:
    """Refuse inputs of these specs before allocating them, if memory cannot hold them."""
    needed = sum(math.prod(s.shape) * _itemsize(s.dtype) for s in specs)
    available = available_memory()
    if available is None or needed <= available * INPUT_MEMORY_SHARE:
        return
    text = ", ".join(str(s) for s in specs)
    raise InspectorError(
        f"{spec}: input shape {text} needs ~{needed / 2**30:.1f} GiB, "
        f"{available / 2**30:.1f} GiB available; {fix or 'pass a smaller ' + option('--input', 'inputs')}"
    )


def _itemsize(dtype: str) -> int:
    return getattr(torch, dtype).itemsize


def _registry_entry(name: str):
    try:
        return models.get_entry(name)
    except KeyError as error:
        close = difflib.get_close_matches(name, models.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see 'inspector list'"
        kind = file_kind(name)
        if kind is not None:  # /dev/zero, a FIFO: say what it is, not that no model has its name
            hint = f": {name} is {kind}; MODEL is a registry name, FILE.py:attr or FILE.onnx"
        raise InspectorError(f"unknown model {name!r}{hint}") from error


def _module_and_default_inputs(
    spec, kwargs: dict, meta: bool | None = False
) -> tuple[str, nn.Module, list | None]:
    """The spec's name, its module, and a registry model's own example inputs."""
    if isinstance(spec, nn.Module):
        name = type(spec).__name__
        return name, _build(spec, kwargs, name), None
    if not isinstance(spec, str):
        raise InspectorError(
            f"load_model takes a MODEL spec (a string) or an nn.Module; got {type(spec).__name__}"
        )
    if ":" in spec:
        return spec, _build_maybe_on_meta(import_attr(spec), kwargs, spec, meta), None
    if spec.endswith(".py"):
        raise missing_attr_error(spec)
    entry = _registry_entry(spec)
    module = _build_maybe_on_meta(lambda **kw: models.create_model(spec, **kw), kwargs, spec, meta)
    return spec, module, list(entry.inputs) or [InputSpec(tuple(s)) for s in entry.input_shapes]


def _build_maybe_on_meta(factory, kwargs: dict, spec: str, meta: bool | None) -> nn.Module:
    """Built on the meta device when asked (meta=True), or when asked to decide (None) and the
    weights, measured on a meta build first, would not fit in memory; else built as usual."""
    if meta is False or isinstance(factory, nn.Module):
        return _build(factory, kwargs, spec)
    probe, why = build_on_meta(lambda: _build(factory, kwargs, spec))
    if probe is None and meta:
        raise InspectorError(f"{spec} cannot be built on the meta device: {why}")
    if probe is not None and (meta or not fits_in_memory(weight_bytes(probe), available_memory())):
        return probe
    return _build(factory, kwargs, spec)


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
    # Seeded like the registry's models, so a user's model has the same weights on every load
    # and a file exported today verifies against the model built tomorrow.
    building = user_code(spec, "its constructor", failure=f"building {spec} failed")
    with building, torch.random.fork_rng(devices=[]):
        torch.manual_seed(BUILD_SEED)
        module = factory(**kwargs)
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
