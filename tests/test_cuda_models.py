"""A model or inputs on a GPU: export, verify and bench work on a CPU copy, say so in one line,
and leave the caller's model where it was.

Two kinds of test. Those marked `needs_cuda` use a real GPU and skip without one. The others run
anywhere on a simulated CUDA tensor (tests/_fake_cuda.py): it reads cuda:0 and refuses every
operation but being copied to the CPU, so they pass only if nothing of the model or its inputs
ran before it was moved. A forward cannot run on the simulation, so a summary on CUDA (which runs
on the model's own device) is tested on a real GPU only.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from _fake_cuda import fake_cuda, fake_cuda_module, held_values
from conftest import split_steps
from torch import nn

import inspector
from inspector.errors import InspectorError
from inspector.loading import load_model, loaded_from_module
from inspector.usermodel.devices import cpu_copy, on_cpu

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
NOTE = "inspector: note: "


class Net(nn.Module):
    """Conv -> BatchNorm (running statistics far from 0 and 1) -> Linear, seeded."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(28)
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 5)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
            self.bn.running_mean.copy_(torch.randn(4, generator=generator))
            self.bn.running_var.copy_(torch.rand(4, generator=generator) + 0.5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


class Tied(nn.Module):
    """An embedding and an output layer sharing one weight, and a tensor kept as an attribute."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.head = nn.Linear(4, 7, bias=False)
        self.head.weight = self.embed.weight
        self.scales = [torch.linspace(0.5, 1.5, 4)]  # not a buffer: .cuda() would leave it

    def forward(self, ids):
        return self.head(self.embed(ids) * self.scales[0])


def _seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _notes(err: str) -> list[str]:
    return [line for line in split_steps(err)[0].splitlines() if line.startswith(NOTE)]


# Simulated CUDA: runs everywhere -----------------------------------------------------------------


def test_the_simulation_refuses_what_a_cpu_tensor_would_meet():
    """The simulation is only worth its tests if a model on it fails as a CUDA one does."""
    model = fake_cuda_module(Net()).eval()
    assert next(model.parameters()).is_cuda and isinstance(model.fc.weight, nn.Parameter)
    with pytest.raises(RuntimeError, match="same device"), torch.no_grad():
        model(_seeded(2, 3, 8, 8))
    x = fake_cuda(_seeded(2, 3, 8, 8))
    assert torch.equal(x.cpu(), x.values) and not x.cpu().is_cuda


def test_a_cpu_copy_holds_the_same_values_and_leaves_the_model_as_it_was():
    reference = Net()
    model = fake_cuda_module(Net())
    model.train()
    model.bn.eval()  # a frozen BatchNorm: a flag of its own
    before = {name: p for name, p in model.named_parameters()}
    copied = cpu_copy(model)
    state = copied.state_dict()
    assert all(not t.is_cuda for t in state.values())
    for name, value in reference.state_dict().items():
        assert torch.equal(state[name], value), name
    assert all(before[name] is p for name, p in model.named_parameters())
    assert all(p.is_cuda for p in model.parameters()) and all(b.is_cuda for b in model.buffers())
    assert model.training and not model.bn.training and model.conv.training


def test_a_cpu_copy_keeps_ties_and_moves_tensors_kept_as_attributes():
    model = Tied()
    model.scales = [fake_cuda(model.scales[0])]
    fake_cuda_module(model)
    copied = cpu_copy(model)
    assert copied.head.weight is copied.embed.weight
    assert not copied.scales[0].is_cuda and model.scales[0].is_cuda
    ids = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(1))
    assert copied(ids).shape == (2, 5, 7)


def test_a_cpu_copy_keeps_each_parameters_requires_grad():
    model = Net()  # on the CPU: the flag is copied the same way from any device
    model.conv.weight.requires_grad_(False)
    copied = cpu_copy(model)
    assert copied.fc.weight is not model.fc.weight
    assert [p.requires_grad for p in copied.parameters()] == [
        p.requires_grad for p in model.parameters()
    ]


def test_a_model_that_cannot_be_copied_is_one_line_with_the_way_out():
    model = fake_cuda_module(Net())
    model.lock = threading.Lock()
    with pytest.raises(InspectorError, match=r"on cuda:0 and cannot be copied.*model\.cpu\(\)"):
        cpu_copy(model, "Net")


def test_a_model_whose_cpu_copy_would_not_fit_is_refused_before_copying(monkeypatch):
    from inspector.usermodel import devices

    model = fake_cuda_module(Net())
    needed = sum(p.numel() * 4 for p in model.parameters())
    monkeypatch.setattr(devices, "available_memory", lambda: needed)  # twice would be enough
    with pytest.raises(InspectorError, match=r"Net is on cuda:0 and its weights .* not fit"):
        cpu_copy(model, "Net")
    monkeypatch.setattr(devices, "available_memory", lambda: 4 * needed)
    assert not next(cpu_copy(model, "Net").parameters()).is_cuda


def test_nested_inputs_move_and_a_cpu_model_is_not_copied(capsys):
    class Nested(nn.Module):
        def forward(self, x, inner, mask=None, extra=None, flag=False):
            return x

    module = Nested()
    leaves = {name: _seeded(2, 3, seed=i) for i, name in enumerate("abcd")}
    args = (fake_cuda(leaves["a"]), {"inner": (fake_cuda(leaves["b"]),)})
    kwargs = {"mask": [fake_cuda(leaves["c"])], "extra": {"d": fake_cuda(leaves["d"])}}
    loaded = on_cpu(loaded_from_module(module, args, {**kwargs, "flag": True}))
    assert loaded.module is module
    args, kwargs = loaded.given.args, loaded.given.kwargs
    moved = [args[0], args[1]["inner"][0], kwargs["mask"][0], kwargs["extra"]["d"]]
    assert all(type(t) is torch.Tensor for t in moved)
    assert all(torch.equal(t, leaves[n]) for t, n in zip(moved, "abcd", strict=True))
    assert kwargs["flag"] is True
    # Keyword inputs that are no tensor themselves are kept as constants for the seeded runs.
    seeded = loaded.example_inputs(seed=1).kwargs
    assert type(seeded["extra"]["d"]) is torch.Tensor and type(seeded["mask"][0]) is torch.Tensor
    notes = _notes(capsys.readouterr().err)
    assert len(notes) == 1 and "inputs are on cuda:0" in notes[0]


def test_nothing_on_the_cpu_is_moved_or_noted(capsys):
    loaded = load_model(Net(), inputs=[_seeded(2, 3, 8, 8)])
    assert on_cpu(loaded) is loaded
    assert capsys.readouterr().err == ""


def test_verify_of_a_model_and_inputs_on_cuda(capsys):
    model = fake_cuda_module(Net()).train()
    x = fake_cuda(_seeded(2, 3, 8, 8, seed=5))
    report = inspector.verify(model, x)
    assert report, report
    notes = _notes(capsys.readouterr().err)
    assert len(notes) == 1, notes
    assert "Net is on cuda:0" in notes[0] and "stays on cuda:0" in notes[0]
    assert all(p.is_cuda for p in model.parameters()) and model.training and x.is_cuda


def test_export_of_a_model_on_cuda_computes_what_the_model_does(tmp_path):
    import onnxruntime

    model = fake_cuda_module(Net())
    x = _seeded(3, 3, 8, 8, seed=6)
    result = inspector.export_onnx(load_model(model, inputs=[fake_cuda(x)]), tmp_path / "n.onnx")
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    reference = Net().eval()
    reference.load_state_dict(held_values(model))
    with torch.no_grad():
        expected = reference(x).numpy()
    assert abs(got - expected).max() < 1e-4
    assert abs(expected).max() > 0.1  # the figure says something


def test_a_batch_encoding_moves_as_the_dict_it_is(capsys):
    from transformers import BatchEncoding

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(11, 4)

        def forward(self, input_ids, attention_mask):
            return self.embed(input_ids) * attention_mask.unsqueeze(-1)

    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 11, (2, 6), generator=generator)
    mask = torch.randint(0, 2, (2, 6), generator=generator)
    encoding = BatchEncoding({"input_ids": fake_cuda(ids), "attention_mask": fake_cuda(mask)})
    loaded = load_model(Tagger(), inputs=encoding)
    moved = on_cpu(loaded).given
    assert torch.equal(moved.kwargs["input_ids"], ids)
    assert torch.equal(moved.kwargs["attention_mask"], mask)
    assert [spec.dtype for spec in loaded.inputs] == ["int64", "int64"]
    assert len(_notes(capsys.readouterr().err)) == 1


@pytest.mark.slow  # a language model's decode / a check-all worker: make test-slow
def test_decode_steps_of_a_language_model_on_cuda(capsys):
    from inspector.verification.decode import verify_decode

    llm = Path(__file__).parent / "_llm_models.py"
    loaded = load_model(f"{llm}:tiny_gpt2_lm", inputs=["input_ids=2x5:int64:0..100"])
    fake_cuda_module(loaded.module)  # lm_head stays tied to wte, as .cuda() keeps it
    report = verify_decode(loaded, 2)
    assert report, report
    assert len(_notes(capsys.readouterr().err)) == 1
    assert loaded.module.lm_head.weight.is_cuda


_FACTORY = """\
import torch
from _fake_cuda import fake_cuda, fake_cuda_module
from test_cuda_models import Net

def net():
    return fake_cuda_module(Net())

def cpu_net():
    return Net()

def inputs():
    return (fake_cuda(torch.randn(2, 3, 8, 8)),)
"""


@pytest.mark.parametrize(
    "command",
    [
        ["export", "-o", "{tmp}/net.onnx"],
        ["verify"],
        ["bench", "--batch-sizes", "2", "--runs", "1", "--warmup", "1"],
    ],
)
def test_a_factory_and_inputs_on_cuda_from_the_command_line(cli, tmp_path, command):
    (tmp_path / "cudanet.py").write_text(_FACTORY)
    argv = [a.format(tmp=tmp_path) for a in command]
    spec = f"{tmp_path / 'cudanet.py'}"
    result = cli(argv[0], f"{spec}:net", "--inputs", f"{spec}:inputs", *argv[1:])
    assert result.code == 0, result.err
    notes = _notes(result.err)
    assert len(notes) == 1 and "is on cuda:0" in notes[0], result.err


def test_inputs_on_cuda_for_a_model_on_the_cpu_from_the_command_line(cli, tmp_path):
    (tmp_path / "cudanet.py").write_text(_FACTORY)
    spec = f"{tmp_path / 'cudanet.py'}"
    result = cli("verify", f"{spec}:cpu_net", "--inputs", f"{spec}:inputs")
    assert result.code == 0, result.err
    notes = _notes(result.err)
    assert len(notes) == 1 and "inputs are on cuda:0" in notes[0], result.err


_ZOO = """\
import inspector
from _fake_cuda import fake_cuda_module
from test_cuda_models import Net


@inspector.register_model(description="a model on cuda", input_shape=(2, 3, 8, 8))
def zoo_on_cuda():
    return fake_cuda_module(Net())
"""


@pytest.mark.slow  # a language model's decode / a check-all worker: make test-slow
def test_check_all_of_a_zoo_model_on_cuda_copies_it_once(capfd, tmp_path):
    from inspector.models import _registry

    from inspector.cli import main

    saved = dict(_registry._REGISTRY)
    (tmp_path / "cuda_zoo.py").write_text(_ZOO)
    try:  # the check runs in a worker process: its stderr is file descriptor 2's
        code = main(["check-all", "--models", str(tmp_path / "cuda_zoo.py"), "--no-cache"])
    finally:
        _registry._REGISTRY.clear()
        _registry._REGISTRY.update(saved)
    out, err = capfd.readouterr()
    assert code == 0, out + err
    notes = _notes(err)
    assert len(notes) == 1 and "zoo_on_cuda is on cuda:0" in notes[0], err


# A real GPU: skipped without one -----------------------------------------------------------------


@needs_cuda
def test_verify_leaves_a_cuda_model_its_device_grads_and_flags():
    model = Net().cuda().train()
    for param in model.parameters():
        param.grad = torch.randn_like(param)
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    state = {name: t.clone() for name, t in model.state_dict().items()}
    report = inspector.verify(model, _seeded(2, 3, 8, 8).cuda())
    assert report, report
    assert model.training and all(p.is_cuda for p in model.parameters())
    for name, param in model.named_parameters():
        assert torch.equal(param.grad, grads[name]), name
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


@needs_cuda
def test_summary_of_a_cuda_model_counts_with_the_flop_counter_from_python():
    from inspector.summary import counting

    model = Net().cuda()
    summary = inspector.summarize(load_model(model, inputs=[_seeded(2, 3, 8, 8).cuda()]))
    assert summary.mult_adds_counter == counting.MULT_ADDS_COUNTER
    cpu = inspector.summarize(load_model(Net(), inputs=[_seeded(2, 3, 8, 8)]))
    assert summary.mult_adds == cpu.mult_adds
    assert next(model.parameters()).is_cuda


_REAL_FACTORY = """\
import torch
from test_cuda_models import Net

def net():
    return Net().cuda()

def inputs():
    return (torch.randn(2, 3, 8, 8).cuda(),)
"""


@needs_cuda
@pytest.mark.parametrize("command", ["summary", "export", "verify", "bench"])
def test_a_cuda_factory_and_cuda_inputs_from_the_command_line(cli, tmp_path, command):
    (tmp_path / "cudanet.py").write_text(_REAL_FACTORY)
    spec = f"{tmp_path / 'cudanet.py'}"
    extra = {
        "export": ["-o", str(tmp_path / "net.onnx")],
        "bench": ["--batch-sizes", "2", "--runs", "1", "--warmup", "1"],
    }.get(command, [])
    result = cli(command, f"{spec}:net", "--inputs", f"{spec}:inputs", *extra)
    assert result.code == 0, result.err
    notes = _notes(result.err)
    if command == "summary":  # counted where the model is: nothing moved
        assert notes == [] and "PyTorch's FLOP counter" in result.out
    else:
        assert len(notes) == 1 and "is on cuda:0" in notes[0], result.err


@needs_cuda
def test_a_checkpoint_saved_on_cuda_loads_into_a_model_on_either_device(tmp_path):
    source = Net().cuda()
    with torch.no_grad():
        source.fc.bias.add_(1.0)
    path = tmp_path / "cuda.pt"
    torch.save(source.state_dict(), path)
    on_cuda = load_model(Net().cuda(), checkpoint=path, inputs_required=False).module
    on_host = load_model(Net(), checkpoint=path, inputs_required=False).module
    assert on_cuda.fc.bias.is_cuda and not on_host.fc.bias.is_cuda
    assert torch.equal(on_host.fc.bias, source.fc.bias.cpu())
    assert torch.equal(on_cuda.fc.bias, source.fc.bias)
