"""A model or inputs on a GPU, exported and compared on the CPU.

torch.onnx traces on the device the model is on, and onnxruntime runs here on the CPU: a model on
CUDA (or CUDA inputs) would meet CPU tensors and fail with a device mismatch that blames the
user's inputs. So export, verify and bench work on a CPU copy of the model and of its inputs, and
say so in one line on stderr. The caller's module is never moved: its device, flags, gradients
and tensors stay as they were (a summary still runs on the model's own device).
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from typing import TYPE_CHECKING

from ..errors import InspectorError
from ..util.memory import available_memory
from ..util.text import first_line
from .inputs import Inputs
from .meta import fits_in_memory

if TYPE_CHECKING:
    from ..loading import LoadedModel

_HOST = ("cpu", "meta")  # where nothing needs moving (a meta model has no values to move)


def on_cpu(loaded: LoadedModel) -> LoadedModel:
    """`loaded` itself when its weights and given inputs are on the CPU; else a LoadedModel with
    a CPU copy of the module and the given inputs moved, after one note on stderr. The keyword
    inputs kept as constants (a dict of tensors among them) move too: seeded runs reuse them."""
    model_devices = _off_host(_module_tensors(loaded.module))
    input_devices = _off_host(_input_tensors(loaded.given, loaded.constants))
    if not model_devices and not input_devices:
        return loaded
    print(
        f"inspector: note: {_moving_note(loaded.spec, model_devices, input_devices)}",
        file=sys.stderr,
        flush=True,
    )
    module = cpu_copy(loaded.module, loaded.spec) if model_devices else loaded.module
    given = loaded.given.to("cpu") if loaded.given is not None else None
    constants = Inputs((), loaded.constants).to("cpu").kwargs
    return dataclasses.replace(loaded, module=module, given=given, constants=constants)


def cpu_copy(module, spec: str = "the model"):
    """A copy of `module` with every tensor on the CPU, made without a second copy on the device:
    deepcopy is handed each parameter, buffer and tensor attribute already copied to the CPU (a
    tied weight stays tied, as both names map to one copy). The copy holds no gradients."""
    import torch
    from torch import nn

    _check_copy_fits(module, spec)
    memo: dict[int, object] = {}
    for tensor in _module_tensors(module):
        if id(tensor) not in memo and tensor.device.type not in _HOST:
            moved = tensor.detach().to("cpu")
            memo[id(tensor)] = (
                nn.Parameter(moved, requires_grad=tensor.requires_grad)
                if isinstance(tensor, nn.Parameter)
                else moved
            )
    try:
        copied = copy.deepcopy(module, memo)
    except Exception as error:  # a module holding something deepcopy refuses (a lock, a file)
        raise InspectorError(
            f"{spec} is on {_names(_off_host(_module_tensors(module)))} and cannot be copied to "
            f"the CPU for export ({type(error).__name__}: {first_line(error)}); move it there "
            "first with model.cpu()"
        ) from error
    # What deepcopy copies itself (a TorchScript module's C++ tensors) is ours to move.
    if _off_host(_module_tensors(copied)):
        with torch.no_grad():
            copied.to("cpu")
    return copied


def _check_copy_fits(module, spec: str) -> None:
    """Refuse, before copying, a model whose weights the CPU's memory cannot hold beside what the
    export needs (the kernel's OOM killer would end the process without a word)."""
    tensors = {id(t): t for t in _module_tensors(module) if t.device.type not in _HOST}
    needed = sum(t.numel() * t.element_size() for t in tensors.values())
    available = available_memory()
    if available is not None and not fits_in_memory(needed, available):
        raise InspectorError(
            f"{spec} is on {_names(_off_host(tensors.values()))} and its weights "
            f"({needed / 2**30:.1f} GiB) would not fit in the memory available for a CPU copy "
            f"({available / 2**30:.1f} GiB); export it on a machine with more memory "
            "('inspector summary' runs where the model is)"
        )


def _module_tensors(module) -> list:
    """Every parameter and buffer under every name, and the tensors a module keeps in plain
    attributes (transformers' rotary embeddings keep `original_inv_freq`), nested in lists,
    tuples and dicts too."""
    import torch
    from torch.utils._pytree import tree_leaves

    tensors = [p for _, p in module.named_parameters(remove_duplicate=False)]
    tensors += [b for _, b in module.named_buffers(remove_duplicate=False)]
    for sub in module.modules():
        for name, value in vars(sub).items():
            if name in ("_parameters", "_buffers", "_modules"):
                continue
            if isinstance(value, (torch.Tensor, list, tuple, dict)):
                tensors += [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]
    return tensors


def _input_tensors(given, constants: dict) -> list:
    """The tensors of the inputs given and of the constants, nested in dicts, lists and tuples."""
    import torch
    from torch.utils._pytree import tree_leaves

    values = (given.args, given.kwargs, constants) if given is not None else constants
    return [t for t in tree_leaves(values) if isinstance(t, torch.Tensor)]


def _off_host(tensors) -> list[str]:
    """The devices (`cuda:0`) of the tensors that are neither on the CPU nor on meta, in order."""
    devices: list[str] = []
    for tensor in tensors:
        device = tensor.device
        if device.type not in _HOST and str(device) not in devices:
            devices.append(str(device))
    return devices


def _names(devices: list[str]) -> str:
    return " and ".join(devices)


def _moving_note(spec: str, model_devices: list[str], input_devices: list[str]) -> str:
    if model_devices:
        where = _names(model_devices)
        inputs = " and of its inputs" if input_devices else ""
        return (
            f"{spec} is on {where}: a CPU copy of it{inputs} is exported and run, as onnxruntime "
            f"runs on the CPU here (the model itself stays on {where})"
        )
    return (
        f"{spec}'s inputs are on {_names(input_devices)}: they are moved to the CPU, where the "
        "model is, for export and onnxruntime"
    )
