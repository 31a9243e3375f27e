"""MobileNetV3 built from the paper's tables: torchvision's parameter counts, block structure."""

import pytest
import torch
import torchinfo
from inspector.models import create_model, get_entry, list_models
from inspector.models.mobilenetv3 import (
    LARGE_BLOCKS,
    SMALL_BLOCKS,
    InvertedResidual,
    SqueezeExcitation,
    _make_divisible,
)
from torch import nn

from inspector.checkall import give_batchnorm_statistics

# torchvision's documented figures (weights tables of mobilenet_v3_small / _large).
PARAMS = {"mobilenet_v3_small": 2_542_856, "mobilenet_v3_large": 5_483_032}
GFLOPS = {"mobilenet_v3_small": 0.057, "mobilenet_v3_large": 0.217}


@pytest.fixture(
    scope="module",
    params=[pytest.param("mobilenet_v3_large", marks=pytest.mark.slow), "mobilenet_v3_small"],
)
def built(request):
    return request.param, create_model(request.param).eval()


def test_registered_with_an_imagenet_example_input():
    assert {"mobilenet_v3_small", "mobilenet_v3_large"} <= set(list_models("mobilenet*"))
    for name in PARAMS:
        assert get_entry(name).input_shapes == ((1, 3, 224, 224),)


def test_parameter_count_equals_torchvision(built):
    name, model = built
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def test_torchinfo_mult_adds_near_torchvision(built):
    name, model = built
    stats = torchinfo.summary(model, (1, 3, 224, 224), device="cpu", mode="eval", verbose=0)
    assert stats.total_params == PARAMS[name]
    assert stats.total_mult_adds / 1e9 == pytest.approx(GFLOPS[name], abs=0.0015)


@pytest.mark.parametrize(
    ("name", "table", "se_blocks", "residual_blocks"),
    [("mobilenet_v3_small", SMALL_BLOCKS, 9, 6), ("mobilenet_v3_large", LARGE_BLOCKS, 8, 10)],
)
def test_blocks_follow_the_table(name, table, se_blocks, residual_blocks):
    model = create_model(name)
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == len(table) == len(model.features) - 2  # plus stem and last conv
    assert sum(any(isinstance(m, SqueezeExcitation) for m in b.modules()) for b in blocks) == (
        se_blocks
    )
    assert sum(b.use_residual for b in blocks) == residual_blocks
    for block, row in zip(blocks, table, strict=True):
        depthwise = next(m for m in block.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
        assert depthwise.kernel_size == (row.kernel_size, row.kernel_size)
        assert depthwise.stride == (row.stride, row.stride)
        assert depthwise.groups == depthwise.in_channels == row.expanded_channels
        activation = {"RE": nn.ReLU, "HS": nn.Hardswish}[row.activation]
        assert any(isinstance(m, activation) for m in block.block[0])
        assert block.use_residual == (row.stride == 1 and row.in_channels == row.out_channels)


def test_table_rows_chain_their_channels():
    for table in (SMALL_BLOCKS, LARGE_BLOCKS):
        for before, after in zip(table, table[1:], strict=False):
            assert before.out_channels == after.in_channels


def test_layers_as_the_paper_specifies(built):
    _, model = built
    stem_conv, stem_bn, stem_act = model.features[0]
    assert (stem_conv.in_channels, stem_conv.out_channels, stem_conv.stride) == (3, 16, (2, 2))
    assert isinstance(stem_act, nn.Hardswish)
    last_conv = model.features[-1][0]
    assert last_conv.out_channels == 6 * last_conv.in_channels
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and not _inside_se(model, module):
            assert module.bias is None
        if isinstance(module, nn.BatchNorm2d):
            assert (module.eps, module.momentum) == (0.001, 0.01)
    kinds = [type(m) for m in model.classifier]
    assert kinds == [nn.Linear, nn.Hardswish, nn.Dropout, nn.Linear]
    assert model.classifier[2].p == 0.2


def _inside_se(model, conv):
    return any(
        conv is m
        for se in model.modules()
        if isinstance(se, SqueezeExcitation)
        for m in se.modules()
    )


def test_squeeze_excitation_gates_channels():
    se = SqueezeExcitation(96, _make_divisible(96 // 4, 8))
    assert se.fc1.out_channels == 24 and isinstance(se.scale_activation, nn.Hardsigmoid)
    x = torch.randn(2, 96, 7, 7, generator=torch.Generator().manual_seed(1))
    gate = se(x) / x
    # One gate per (sample, channel), in [0, 1], the same at every position.
    assert gate.min() >= 0 and gate.max() <= 1
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(16, 16), (72 // 4, 24), (88 // 4, 24), (3, 8), (120 * 0.75, 88), (960 // 4, 240), (10, 16)],
)
def test_make_divisible(value, expected):
    assert _make_divisible(value, 8) == expected


def test_num_classes_and_width_mult():
    model = create_model("mobilenet_v3_small", num_classes=10, width_mult=0.5).eval()
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (3, 10)
    assert model.features[0][0].out_channels == 8
    assert model.classifier[0].out_features == 512
    full = sum(p.numel() for p in create_model("mobilenet_v3_small").parameters())
    assert sum(p.numel() for p in model.parameters()) < full / 2


def test_deterministic_weights_and_feature_map_size(built):
    name, model = built
    again = create_model(name)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert model.features(x).shape[-2:] == (7, 7)  # five stride-2 stages: 224 / 32
        assert model(x).shape == (2, 1000)


# Exported with --graph authored, the graph shows the paper's layers one node each (Figure 1).
AUTHORED_OPS = {
    # name: (Conv, BatchNormalization, HardSigmoid = SE blocks, Add = shortcuts)
    "mobilenet_v3_small": (52, 34, 9, 6),
    "mobilenet_v3_large": (62, 46, 8, 10),
}


@pytest.fixture(scope="module", params=sorted(AUTHORED_OPS))
def authored(request, tmp_path_factory):
    """(name, LoadedModel, ExportResult): exported once per size, BatchNorms not the identity."""
    import inspector
    from inspector.loading import load_model

    loaded = load_model(request.param)
    give_batchnorm_statistics(loaded.module, seed=5)
    path = tmp_path_factory.mktemp("export") / f"{request.param}.onnx"
    return request.param, loaded, inspector.export_onnx(loaded, path, graph="authored")


@pytest.mark.slow
def test_authored_export_shows_the_layers(authored):
    name, _, result = authored
    ops = result.ops
    convs, batchnorms, gates, shortcuts = AUTHORED_OPS[name]
    assert (ops["Conv"], ops["BatchNormalization"]) == (convs, batchnorms)
    assert (ops["HardSigmoid"], ops["Mul"], ops["Add"]) == (gates, gates, shortcuts)
    assert ops["HardSwish"] > 0 and ops["Relu"] > 0 and ops["Gemm"] == 2
    assert ops.get("GlobalAveragePool", 0) + ops.get("ReduceMean", 0) == gates + 1  # SE + head


@pytest.mark.slow
def test_onnxruntime_computes_what_pytorch_computes(authored):
    import numpy as np
    import onnxruntime

    _, loaded, result = authored
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (image,) = loaded.example_inputs(batch_size=3, seed=7).args
    with torch.no_grad():
        expected = loaded.module(image).numpy()
    [actual] = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-3)
    assert expected.std() > 1e-3  # outputs that vary, not a constant that matches by accident


@pytest.mark.slow
def test_verify_passes(authored):
    import inspector

    _, loaded, result = authored
    report = inspector.verify(loaded, onnx=result.path, seeds=1, batch_sizes=[1, 3])
    assert report, str(report)
