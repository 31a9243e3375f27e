"""Checkpoints load without a second copy of the weights: torch.load maps the file and
load_state_dict assigns its tensors, while weights_only, strictness, dtypes and tied weights stay."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from inspector.errors import InspectorError
from inspector.usermodel import checkpoint
from inspector.usermodel.checkpoint import load_state_dict

sys.path.insert(0, str(Path(__file__).parent))
from _llm_models import tiny_gpt2_lm  # noqa: E402


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 4))


def _trained(seed: int) -> nn.Module:
    net = _net(seed)
    with torch.no_grad():
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
    return net


@pytest.fixture
def loads(monkeypatch):
    """Every torch.load call's keyword arguments and what it returned."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((kwargs, result))
        return result

    monkeypatch.setattr(checkpoint.torch, "load", spy)
    return calls


def test_the_file_is_mapped_and_its_tensors_assigned(tmp_path, loads):
    path = tmp_path / "net.pt"
    source = _trained(1)
    torch.save(source.state_dict(), path)
    net = _net(2)
    load_state_dict(net, path)
    (kwargs, state), *_ = loads
    assert kwargs["mmap"] is True and kwargs["weights_only"] is True
    # the module holds the mapped tensors themselves, not copies of them
    assert net[0].weight.data_ptr() == state["0.weight"].data_ptr()
    assert net[1].running_var.data_ptr() == state["1.running_var"].data_ptr()
    assert isinstance(net[0].weight, nn.Parameter) and net[0].weight.requires_grad
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(net.eval()(x), source.eval()(x))


def test_strictness_stays(tmp_path):
    state = _trained(1).state_dict()
    del state["2.bias"]
    torch.save(state, tmp_path / "short.pt")
    with pytest.raises(InspectorError, match="2.bias"):
        load_state_dict(_net(2), tmp_path / "short.pt")


def test_a_half_precision_checkpoint_keeps_the_model_float32(tmp_path):
    source = _trained(1)
    torch.save(
        {k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()},
        tmp_path / "half.pt",
    )
    net = _net(2)
    load_state_dict(net, tmp_path / "half.pt")
    assert {p.dtype for p in net.parameters()} == {torch.float32}
    torch.testing.assert_close(net[0].weight, source[0].weight.half().float())


def test_tied_weights_stay_tied(tmp_path):
    source = tiny_gpt2_lm()
    with torch.no_grad():
        source.transformer.wte.weight.normal_()
    torch.save(source.state_dict(), tmp_path / "gpt2.pt")
    model = tiny_gpt2_lm()
    load_state_dict(model, tmp_path / "gpt2.pt")
    assert model.lm_head.weight is model.transformer.wte.weight
    torch.testing.assert_close(model.lm_head.weight, source.transformer.wte.weight)
    assert len(list(model.parameters())) == len(list(source.parameters()))


def test_a_legacy_checkpoint_still_loads(tmp_path, loads):
    source = _trained(1)
    torch.save(source.state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    net = _net(2)
    load_state_dict(net, tmp_path / "old.pt")
    assert loads[0][0]["weights_only"] is True
    torch.testing.assert_close(net[2].weight, source[2].weight)


def test_safetensors_are_assigned_from_their_mapping(tmp_path):
    from safetensors.torch import save_file

    source = _trained(1)
    save_file(source.state_dict(), tmp_path / "net.safetensors")
    net = _net(2)
    load_state_dict(net, tmp_path / "net.safetensors")
    torch.testing.assert_close(net[1].running_mean, source[1].running_mean)
    assert net[0].weight.requires_grad
