import pytest
import torch
from safetensors.torch import save_file

from inspector.errors import InspectorError
from inspector.loading import load_model


def _trained_state(seed=3):
    """A state_dict unlike the freshly built one, BatchNorm statistics included."""
    model = load_model("conv_bn_relu").module
    generator = torch.Generator().manual_seed(seed)
    return {
        key: torch.randn(value.shape, generator=generator).abs() + 0.1
        if value.is_floating_point()
        else value + 7
        for key, value in model.state_dict().items()
    }


def _assert_loaded(loaded, state):
    got = loaded.module.state_dict()
    assert all(torch.equal(got[key], state[key]) for key in state)
    assert not loaded.module.training


@pytest.mark.parametrize(
    ("filename", "wrap"),
    [
        ("plain.pt", lambda s: s),
        ("wrapped.pth", lambda s: {"state_dict": s, "epoch": 3}),
        ("prefixed.pt", lambda s: {f"module.{k}": v for k, v in s.items()}),
    ],
)
def test_torch_checkpoints_load(tmp_path, filename, wrap):
    state = _trained_state()
    torch.save(wrap(state), tmp_path / filename)
    _assert_loaded(load_model("conv_bn_relu", checkpoint=tmp_path / filename), state)


def test_safetensors_loads(tmp_path):
    state = _trained_state()
    save_file(state, tmp_path / "w.safetensors")
    _assert_loaded(load_model("conv_bn_relu", checkpoint=tmp_path / "w.safetensors"), state)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = _trained_state()
    del state["bn.running_mean"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(InspectorError) as error:
        load_model("conv_bn_relu", checkpoint=tmp_path / "bad.pt")
    assert "1 missing: bn.running_mean" in str(error.value)
    assert "1 unexpected: extra.weight" in str(error.value)


def test_size_mismatch_is_listed(tmp_path):
    state = _trained_state()
    state["conv.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(
        InspectorError, match=r"conv.weight \(32, 3, 3, 3\) vs model \(64, 3, 3, 3\)"
    ):
        load_model("conv_bn_relu", checkpoint=tmp_path / "bad.pt")


def test_cli_checkpoint_error_is_one_line(tmp_path, cli):
    torch.save({"nothing": torch.zeros(1)}, tmp_path / "bad.pt")
    result = cli("summary", "conv_bn_relu", "--checkpoint", tmp_path / "bad.pt")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "does not fit the model" in result.err


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"conv.weight": _RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(InspectorError, match="weights_only=True refuses"):
        load_model("conv_bn_relu", checkpoint=tmp_path / "evil.pt")
    assert not marker.exists()


def test_a_whole_pickled_model_is_named(tmp_path):
    torch.save(load_model("conv_bn_relu").module, tmp_path / "whole.pt")
    with pytest.raises(InspectorError, match="whole pickled model"):
        load_model("conv_bn_relu", checkpoint=tmp_path / "whole.pt")


def test_torchscript_archive_is_named(tmp_path):
    scripted = torch.jit.script(load_model("conv_bn_relu").module)
    scripted.save(str(tmp_path / "scripted.pt"))
    with pytest.raises(InspectorError, match="TorchScript archive"):
        load_model("conv_bn_relu", checkpoint=tmp_path / "scripted.pt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00garbage" * 10, "not a PyTorch checkpoint"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "w.pt"
    path.write_bytes(content)
    with pytest.raises(InspectorError, match=message):
        load_model("conv_bn_relu", checkpoint=path)


def test_bad_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(InspectorError, match="not a readable safetensors file"):
        load_model("conv_bn_relu", checkpoint=path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(InspectorError, match="no such file"):
        load_model("conv_bn_relu", checkpoint=tmp_path / "nope.pt")
