"""The authored graph names every weight after its own layer, and adds no bias a layer lacks."""

import onnx
import torch
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
