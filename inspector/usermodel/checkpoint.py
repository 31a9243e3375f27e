"""Load a checkpoint's weights into a module: safely, strictly, and with errors a user can act on.

`.safetensors` files hold tensors only. Anything else goes through torch.load(weights_only=True),
which refuses pickled code; there is deliberately no unsafe fallback.

Without a second copy of the weights: torch.load maps the file (mmap=True: its pages are read
when used, and belong to the page cache) and load_state_dict assigns those tensors to the module
(assign=True) instead of copying them into the weights it was built with, which are then freed.
A safetensors file is copied in one tensor at a time from safetensors' own mapping of the file.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import InspectorError
from ..util.files import existing_file
from ..util.text import first_line

# Common wrappers around a state_dict in training scripts' checkpoints.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def load_state_dict(module: nn.Module, path) -> None:
    path = Path(path)
    state = read_state_dict(path)
    state = _strip_prefix(state, "module.")  # saved from DataParallel / DistributedDataParallel
    _check_sizes(module, state, path)
    assign = _can_assign(module, state)
    if assign:
        state = _in_module_dtypes(module, state)
    tied = _tied_parameters(module)
    with warnings.catch_warnings():
        # A model built on the meta device keeps no values: loading only checks names and shapes.
        warnings.filterwarnings("ignore", message=".*meta parameter.*no-op")
        result = module.load_state_dict(state, strict=False, assign=assign)
    if assign:
        _tie_again(module, tied)
    problems = []
    if result.missing_keys:
        problems.append(_listing("missing", result.missing_keys))
    if result.unexpected_keys:
        problems.append(_listing("unexpected", result.unexpected_keys))
    if problems:
        raise InspectorError(f"checkpoint {path} does not fit the model: {'; '.join(problems)}")


def read_state_dict(path: Path) -> dict:
    path = existing_file(path, "checkpoint")
    state = _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)
    return _unwrap(state, path)


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InspectorError(
            f"checkpoint {path} is not a readable safetensors file: {error}"
        ) from error


def _read_torch(path: Path) -> dict:
    try:
        with warnings.catch_warnings():  # torch warns about TorchScript archives; we say it below
            warnings.simplefilter("ignore")
            return _mapped_load(path)
    except pickle.UnpicklingError as error:
        raise InspectorError(_refusal(path, str(error))) from error
    except RuntimeError as error:
        if "TorchScript" in str(error):
            raise InspectorError(
                f"checkpoint {path} is a TorchScript archive, not a state_dict; "
                "save model.state_dict() instead"
            ) from error
        raise InspectorError(f"checkpoint {path} cannot be read: {first_line(error)}") from error
    except (EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        reason = first_line(error)
        raise InspectorError(f"checkpoint {path} is not a PyTorch checkpoint ({reason})") from error
    except Exception as error:  # the unpickler on crafted bytes: IndexError, KeyError, struct.error
        reason = type(error).__name__ + (f": {first_line(error)}" if str(error).strip() else "")
        raise InspectorError(f"checkpoint {path} is not a PyTorch checkpoint ({reason})") from error


def _mapped_load(path: Path):
    """torch.load mapping the file (no copy in memory); a file in torch's legacy, pre-zip format
    cannot be mapped and is read whole."""
    if zipfile.is_zipfile(path):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def _can_assign(module: nn.Module, state: dict) -> bool:
    """Assigning puts the checkpoint's tensors in the module as they are: only for a module on
    the CPU (a CUDA or meta module keeps its device, so it is copied into)."""
    tensors = [*module.parameters(), *module.buffers()]
    return bool(tensors) and all(t.device.type == "cpu" for t in tensors)


def _in_module_dtypes(module: nn.Module, state: dict) -> dict:
    """A float16 checkpoint loaded into a float32 model stays a float32 model, as copying keeps
    it: only the tensors whose dtype differs are converted (copied)."""
    own = module.state_dict(keep_vars=True)
    return {
        key: value.to(own[key].dtype) if key in own and own[key].dtype != value.dtype else value
        for key, value in state.items()
    }


def _tied_parameters(module: nn.Module) -> list[list[str]]:
    """Names of each parameter held under several names (GPT-2's lm_head.weight is its wte)."""
    names: dict[int, list[str]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return [group for group in names.values() if len(group) > 1]


def _tie_again(module: nn.Module, tied: list[list[str]]) -> None:
    """Assigning gives each name its own new tensor: the names that shared one share again the
    first name's, as copying in place would have left them."""
    for first, *others in tied:
        param = module.get_parameter(first)
        for name in others:
            owner, _, attribute = name.rpartition(".")
            setattr(module.get_submodule(owner), attribute, param)


def _refusal(path: Path, message: str) -> str:
    if "Unsupported global" not in message:
        return f"checkpoint {path} is not a PyTorch checkpoint (its pickle does not decode)"
    if any(name.startswith("torch.nn.modules.") for name in _pickled_globals(path)):
        return (
            f"checkpoint {path} holds a whole pickled model, not a state_dict; refusing to "
            "unpickle it (that can run code): save model.state_dict() instead"
        )
    found = re.search(r"GLOBAL (\S+)", message)
    what = f" ({found.group(1)})" if found else ""
    return (
        f"checkpoint {path} holds pickled objects{what} that weights_only=True refuses to load "
        "(unpickling them could run code); save a plain state_dict or use .safetensors"
    )


def _pickled_globals(path: Path) -> set[str]:
    """The classes and functions a checkpoint's pickle names, read without unpickling anything."""
    names = set()
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            data = archive.read(pickles[0]) if pickles else b""
        strings: list[str] = []
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                names.add(arg.replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.add(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except (zipfile.BadZipFile, ValueError, OSError):
        pass
    return names


def _unwrap(state, path: Path) -> dict:
    if isinstance(state, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InspectorError(
            f"checkpoint {path} is not a state_dict (a mapping of names to tensors)"
        )
    return state


def _strip_prefix(state: dict, prefix: str) -> dict:
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _check_sizes(module: nn.Module, state: dict, path: Path) -> None:
    expected = module.state_dict()
    wrong = [
        f"{key} {tuple(value.shape)} vs model {tuple(expected[key].shape)}"
        for key, value in state.items()
        if key in expected and expected[key].shape != value.shape
    ]
    if wrong:
        raise InspectorError(
            f"checkpoint {path} does not fit the model: {_listing('size mismatch', wrong)}"
        )


def _listing(what: str, items: list[str], most: int = 5) -> str:
    shown = ", ".join(items[:most])
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return f"{len(items)} {what}: {shown}{more}"
