"""The authored graph names every weight after its own layer, adds no bias a layer lacks, and
makes no copy of a weight."""

import numpy as np
import onnx
import torch
from _export_helpers import assert_matches_torch
from torch import nn

from inspector.export import export_onnx
from inspector.loading import LoadedModel


class NoBiasThenZeroBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 1)
        nn.init.zeros_(self.conv2.bias)  # as zero as bn.bias, yet a parameter of its own

    def forward(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(x))))


def test_authored_conv_inputs_are_the_layers_own(tmp_path):
    torch.manual_seed(0)
    loaded = LoadedModel("test:NoBiasThenZeroBias", NoBiasThenZeroBias().eval(), [(2, 3, 8, 8)])
    path = export_onnx(loaded, tmp_path / "m.onnx").path
    convs = [node for node in onnx.load(path).graph.node if node.op_type == "Conv"]
    assert list(convs[0].input[1:]) == ["conv1.weight"]
    assert list(convs[1].input[1:]) == ["conv2.weight", "conv2.bias"]


def test_the_batch_axis_is_called_batch_on_every_edge(tmp_path):
    torch.manual_seed(0)
    loaded = LoadedModel("test:NoBiasThenZeroBias", NoBiasThenZeroBias().eval(), [(2, 3, 8, 8)])
    graph = onnx.load(export_onnx(loaded, tmp_path / "m.onnx").path).graph
    weights = {init.name for init in graph.initializer}
    values = [v for v in (*graph.input, *graph.output, *graph.value_info) if v.name not in weights]
    first_dims = [value.type.tensor_type.shape.dim[0] for value in values]
    assert len(first_dims) > 2
    assert all(dim.dim_param == "batch" for dim in first_dims)


class TokenMlp(nn.Module):
    """Linear layers on (batch, tokens, features), as in a transformer: the exporter writes each
    as Transpose(weight) -> MatMul -> Add."""

    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(16, 40), nn.Linear(40, 16)

    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.up(x)))


def test_the_authored_graph_holds_no_copy_of_a_weight(tmp_path):
    """Folding Transpose(weight) would write a transposed copy under a made-up name (and hold it
    next to the model's own weight for the whole export)."""
    torch.manual_seed(0)
    loaded = LoadedModel("test:TokenMlp", TokenMlp().eval(), [(2, 5, 16)])
    path = export_onnx(loaded, tmp_path / "m.onnx").path
    parameters = dict(loaded.module.state_dict())
    initializers = onnx.load(path).graph.initializer
    made_up = {
        init.name: len(init.raw_data) for init in initializers if init.name not in parameters
    }
    assert sum(made_up.values()) < 256, made_up  # a few shape constants at most
    assert {init.name for init in initializers} >= set(parameters)
    assert_matches_torch(path, loaded, batch_size=3, seed=7)


def test_the_run_at_other_sizes_is_fed_the_models_own_weights(tmp_path, monkeypatch):
    """The export's own onnxruntime run takes the large weights as inputs: views of the model's
    tensors, not a copy of every weight at once."""
    from inspector.export import exporter

    fed = {}

    def confirm_runs(light, weights, *args):
        fed.update(weights)
        return run(light, weights, *args)

    run = exporter.confirm_runs
    monkeypatch.setattr(exporter, "confirm_runs", confirm_runs)
    torch.manual_seed(0)
    loaded = LoadedModel("test:TokenMlp", TokenMlp().eval(), [(2, 5, 16)])
    export_onnx(loaded, tmp_path / "m.onnx")
    parameters = loaded.module.state_dict()
    assert set(fed) == {"up.weight", "down.weight"}  # the biases are small: kept in the graph
    for name, array in fed.items():
        assert np.shares_memory(array, parameters[name].numpy()), name
