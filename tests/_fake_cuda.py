"""A CUDA tensor on a machine without CUDA, to test the code that moves models and inputs off it.

`torch.Tensor._make_wrapper_subclass` makes a tensor whose device reads cuda:0 (`is_cuda` True) on
a CPU-only torch. Its `__torch_dispatch__` serves what code may do with a CUDA tensor before moving
it (copy it to the CPU or to another dtype, detach it, read its min, max or a value) from the CPU
values it holds (min and max come back on the CPU, see _READ_ON_HOST), and answers every other
operation as torch answers a CUDA tensor meeting a CPU one: RuntimeError("Expected all tensors to
be on the same device ..."). That is stricter than a GPU, which would compute on CUDA tensors: a
test passes only if nothing ran on the "device".

Limits of the simulation: parameters are made with requires_grad=False (autograd on a CUDA tensor
aborts a CPU-only torch); `module._apply(FakeCudaTensor)` makes storage-less plain tensors, so
fake_cuda_module replaces each parameter and buffer itself; `model.to("cpu")` on such a model gives
hybrids rather than CPU tensors, and a plain `copy.deepcopy` is refused (it clones on the device,
where a GPU would hold a second copy). A forward cannot run on these tensors at all, so a summary (which runs on the
model's own device) is tested on a real GPU only (tests/test_cuda_models.py, skipped without one).
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_map

_SERVED_ON_DEVICE = {"detach", "alias"}  # views: they stay on the "device"
# Reductions whose value code reads (an int input's range). Their result comes back on the CPU:
# int() of a 0-d tensor on the "device" reaches torch's CUDA guard, which a CPU-only torch lacks.
_READ_ON_HOST = {"min", "max"}
MISMATCH = (
    "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and "
    "cpu! (simulated CUDA tensor: {op})"
)


class FakeCudaTensor(torch.Tensor):
    """A tensor that says it lives on cuda:0 and holds its values on the CPU."""

    @staticmethod
    def __new__(cls, values: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(
            cls, values.shape, dtype=values.dtype, device="cuda:0", strides=values.stride()
        )

    def __init__(self, values: torch.Tensor):
        self.values = values.detach()

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self) -> str:  # torch's repr would read the values on the device
        return f"FakeCudaTensor({tuple(self.shape)}, {self.dtype})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        op = func.overloadpacket.__name__
        if op == "_to_copy":
            device = kwargs.pop("device", None)
            moved = func(args[0].values, **kwargs)
            if device is not None and torch.device(device).type == "cpu":
                return moved
            return cls(moved)
        if op == "_local_scalar_dense":  # .item(), int(): a GPU copies the value to the host
            return args[0].values.item()
        if op in _READ_ON_HOST:
            return func(*tree_map(_values, args), **tree_map(_values, kwargs))
        if op in _SERVED_ON_DEVICE:
            result = func(*tree_map(_values, args), **tree_map(_values, kwargs))
            return tree_map(lambda t: cls(t) if isinstance(t, torch.Tensor) else t, result)
        raise RuntimeError(MISMATCH.format(op=f"aten.{op}"))


def _values(value):
    return value.values if isinstance(value, FakeCudaTensor) else value


def fake_cuda(tensor: torch.Tensor) -> FakeCudaTensor:
    return FakeCudaTensor(tensor)


def fake_cuda_module(module: torch.nn.Module) -> torch.nn.Module:
    """`module.cuda()` simulated: each parameter and buffer replaced by a FakeCudaTensor holding
    its values (parameters without requires_grad, see the module's docstring)."""
    moved: dict[int, torch.Tensor] = {}  # a tied weight stays one tensor, as .cuda() keeps it
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None:
                if id(param) not in moved:
                    moved[id(param)] = torch.nn.Parameter(fake_cuda(param), requires_grad=False)
                sub._parameters[name] = moved[id(param)]
        for name, buffer in list(sub._buffers.items()):
            if buffer is not None:
                sub._buffers[name] = moved.setdefault(id(buffer), fake_cuda(buffer))
    return module


def held_values(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The CPU values behind a fake-CUDA module's state, by name."""
    return {k: _values(v) for k, v in module.state_dict(keep_vars=True).items()}
