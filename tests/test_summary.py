import subprocess
import sys

import pytest
import torch
from _golden import assert_golden
from _params import registered_models

from inspector.loading import load_model
from inspector.summary import summarize

LECTURE = ["conv_bn_relu", "exercise_model", "my_model", "conv", "linear", "batchnorm", "relu"]
SUMMARY_KEYS = {
    "model",
    "input_shapes",
    "output_shapes",
    "total_params",
    "trainable_params",
    "non_trainable_params",
    "mult_adds",
    "layers",
    # beyond DESIGN's list: typed, named inputs and outputs, and which counter gave mult_adds
    "input_names",
    "input_dtypes",
    "output_names",
    "mult_adds_counter",
    "dense_params",  # total_params before pruning
    "uncounted_layers",  # layers the FLOP counter saw nothing in (torchinfo's figure used)
    "meta",  # built on the meta device (shapes and counts, no values)
}
LAYER_KEYS = {
    "name",
    "type",
    "depth",
    "input_shape",
    "output_shape",
    "params",
    "shared_with",
    "mult_adds",
}


@pytest.mark.parametrize("name", LECTURE)
def test_printed_summary_matches_golden(cli, name):
    result = cli("summary", name)
    assert result.code == 0, result.err
    assert_golden(result.out, f"summary/{name}.txt")


@pytest.mark.parametrize("name", registered_models())
def test_param_count_matches_a_direct_count(name):
    loaded = load_model(name)
    summary = summarize(loaded)
    unique = {id(p): p for p in loaded.module.parameters()}.values()
    assert summary.total_params == sum(p.numel() for p in unique)
    assert summary.trainable_params == sum(p.numel() for p in unique if p.requires_grad)
    assert summary.non_trainable_params == sum(p.numel() for p in unique if not p.requires_grad)


def test_json_has_the_documented_keys(cli):
    result = cli("summary", "exercise_model", "--format", "json")
    data = result.json()
    assert set(data) == SUMMARY_KEYS
    assert data["output_shapes"] == [[32, 64]]
    assert data["total_params"] == 4_214_336
    assert all(set(layer) == LAYER_KEYS for layer in data["layers"])
    assert [layer["name"] for layer in data["layers"][1:]] == ["conv", "bn", "relu", "fc"]


def test_json_is_the_only_thing_on_stdout(cli):
    result = cli("summary", "relu", "--format", "json")
    assert result.json()["total_params"] == 0


def test_markdown_lists_layers_and_totals(cli):
    result = cli("summary", "conv_bn_relu", "--format", "markdown")
    assert "| conv | Conv2d | 1x64x128x128 | 1,792 |" in result.out
    assert "- total params: 1,920" in result.out


def test_depth_limits_the_layers(cli):
    shallow = cli("summary", "exercise_model", "--depth", "1", "--format", "json").json()
    assert max(layer["depth"] for layer in shallow["layers"]) <= 1


def test_frozen_parameters_count_as_non_trainable():
    loaded = load_model("conv_bn_relu")
    for p in loaded.module.bn.parameters():
        p.requires_grad_(False)
    summary = summarize(loaded)
    assert summary.non_trainable_params == 128
    assert summary.trainable_params == 1792


def test_summary_restores_each_submodule_mode():
    loaded = load_model("conv_bn_relu")
    loaded.module.bn.train()  # a mixed state that torchinfo alone would flatten
    summarize(loaded)
    assert loaded.module.bn.training and not loaded.module.conv.training


def test_shared_parameters_are_counted_once(tmp_path):
    source = (
        "from torch import nn\n"
        "class Tied(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a = nn.Linear(4, 4)\n"
        "        self.b = self.a\n"
        "    def forward(self, x):\n"
        "        return self.b(self.a(x))\n"
    )
    (tmp_path / "tied.py").write_text(source)
    loaded = load_model(f"{tmp_path / 'tied.py'}:Tied", input_shapes=[(2, 4)])
    assert summarize(loaded).total_params == 20


def test_forward_failure_names_the_shape(cli):
    result = cli("summary", "exercise_model", "--input-shape", "2,3,64,64")
    assert result.code == 2
    assert "2x3x64x64" in result.err
    assert "in layer fc (Linear)" in result.err
    assert "mat1 and mat2" in result.err  # the Linear layer's own message
    assert len(result.err.strip().splitlines()) == 1


def test_mult_adds_of_a_conv_follow_the_formula():
    """Conv2d(3, 64, 3, padding=1) on 1x3x128x128: one 3x3x3 dot product per output element; the
    bias add, the BatchNorm and the ReLU are no mult-adds."""
    summary = summarize(load_model("conv_bn_relu"))
    assert summary.mult_adds == 64 * 128 * 128 * 3 * 3 * 3


def test_summary_uses_random_not_constant_inputs():
    loaded = load_model("relu")
    (x,) = loaded.example_inputs().args
    assert x.std() > 0.1 and torch.equal(x, load_model("relu").example_inputs().args[0])


def test_counting_leaves_dynamo_unloaded_and_counts_the_same():
    """The counter skips torch's import of dynamo (about 1 s of every summary); the counts must be
    those of a process where dynamo is loaded, and torch's own cache must be left as it was."""
    code = """
import sys
import torch
from torch.utils import flop_counter
from inspector.summary.counting import count_mult_adds
from inspector.loading import load_model
loaded = load_model("exercise_model")
first = count_mult_adds(loaded.module, loaded.example_inputs())
unloaded = "torch._dynamo" not in sys.modules
handler = vars(flop_counter._FlopCounterMode)["__torch_dispatch__"].__wrapped__
left = hasattr(handler, "__dynamo_disable")
import torch._dynamo
second = count_mult_adds(loaded.module, loaded.example_inputs())
print(unloaded, left, first == second, first.total > 0, len(first.per_module) > 1)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "True", "True", "True"], done.stderr
