"""inspector summary on the cases of torchinfo's own test suite (models re-written small in
tests/_torchinfo_cases.py): parameter counts agree with torchinfo's `summary()`, mult-adds with
counts by hand, and what torchinfo summarizes, inspector summarizes too (exit 0)."""

from __future__ import annotations

import pytest
import torch
import torchinfo
from _torchinfo_cases import (
    Attention,
    CategoricalOutput,
    ConvBatchNorm,
    DictWithNonTensors,
    LinearModel,
    LSTMNet,
    PackedLSTM,
    ParameterHolder,
    Recurrent,
    ReturnsParameter,
    SingleInputNet,
    TakesNamedTuple,
    TakesNothing,
    TensorKernelSize,
    module_list,
    namedtuple_inputs,
)
from torch import nn
from torch.nn.utils import prune

from inspector.errors import on_command_line
from inspector.loading import load_model
from inspector.summary import counting, summarize

CASES = "tests/_torchinfo_cases.py"


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _ids(*shape: int, high: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(0))


def _pruned_single_input_net() -> nn.Module:
    model = SingleInputNet()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            prune.l1_unstructured(module, "weight", 0.5)
    return model


# name -> (model builder, positional inputs, keyword inputs)
TORCHINFO_CASES = {
    "single_input": (SingleInputNet, lambda: (_randn(16, 1, 28, 28),), dict),
    "lstm": (LSTMNet, lambda: (_ids(100, 1, high=20),), dict),
    "linear": (LinearModel, lambda: (_randn(64, 16),), dict),
    "recursive": (Recurrent, lambda: (_randn(1, 4, 8, 8),), dict),
    "batchnorm": (ConvBatchNorm, lambda: (_randn(2, 3, 8, 8),), dict),
    "pruning": (_pruned_single_input_net, lambda: (_randn(16, 1, 28, 28),), dict),
    "namedtuple": (TakesNamedTuple, lambda: namedtuple_inputs()[0], lambda: namedtuple_inputs()[1]),
    "jit": (lambda: torch.jit.script(LinearModel()), lambda: (_randn(64, 16),), dict),
}


@pytest.mark.parametrize("case", sorted(TORCHINFO_CASES))
def test_parameter_counts_agree_with_torchinfo(case):
    build, args, kwargs = TORCHINFO_CASES[case]
    torch.manual_seed(0)
    model = build()
    ours = summarize(load_model(model, inputs=(args(), kwargs())))
    theirs = torchinfo.summary(
        model, input_data=list(args()), verbose=0, device="cpu", mode="eval", **kwargs()
    )
    assert ours.total_params == theirs.total_params
    assert ours.trainable_params == theirs.trainable_params


@pytest.mark.parametrize("build", [ParameterHolder, module_list], ids=["holder", "module_list"])
def test_without_input_the_parameter_table_agrees_with_torchinfo(build):
    model = build()
    summary = summarize(load_model(model, inputs_required=False))
    assert summary.total_params == torchinfo.summary(model, verbose=0).total_params
    assert summary.mult_adds is None and summary.mult_adds_counter == "none"
    assert "need an example input: pass inputs= (or input data)" in str(summary)
    with on_command_line():  # the command line's summary names the flag
        summary = summarize(load_model(model, inputs_required=False))
    assert "need an example input: pass --input (or input data)" in str(summary)
    assert "- output shapes: --" in summary.to_markdown()


def test_single_input_net_mult_adds_by_hand():
    """Each output element of a conv is one dot product over its kernel; a Linear one dot
    product per output; pooling, ReLU and the bias adds are no mult-adds."""
    summary = summarize(load_model(SingleInputNet(), inputs=[_randn(16, 1, 28, 28)]))
    conv1 = 16 * 10 * 24 * 24 * (1 * 5 * 5)
    conv2 = 16 * 20 * 8 * 8 * (10 * 5 * 5)
    linear = 16 * 320 * 50 + 16 * 50 * 10
    assert summary.mult_adds == conv1 + conv2 + linear


def test_lstm_counts_every_step_of_every_gate():
    """On the CPU nn.LSTM runs one oneDNN op per layer that torch's counter has no formula for:
    it counted ~0. Each step multiplies the input by W_ih (4H x in) and the state by W_hh."""
    steps, hidden = 100, 512
    summary = summarize(load_model(LSTMNet(), inputs=[_ids(steps, 1, high=20)]))
    layer0 = 4 * hidden * (300 + hidden)
    layer1 = 4 * hidden * (hidden + hidden)
    decoder = 512 * 20
    assert summary.mult_adds == steps * (layer0 + layer1 + decoder)
    assert summary.uncounted_layers == []
    encoder = next(layer for layer in summary.layers if layer.name == "encoder")
    assert encoder.mult_adds == steps * (layer0 + layer1)


@pytest.mark.parametrize(("cell", "gates"), [(nn.GRU, 3), (nn.RNN, 1), (nn.LSTM, 4)])
def test_bidirectional_recurrent_layers_by_hand(cell, gates):
    steps, batch, features, hidden = 7, 3, 5, 6
    model = cell(features, hidden, num_layers=2, bidirectional=True)
    summary = summarize(load_model(model, inputs=[_randn(steps, batch, features)]))
    first = gates * hidden * (features + hidden)
    second = gates * hidden * (2 * hidden + hidden)
    assert summary.mult_adds == steps * batch * 2 * (first + second)


def test_a_packed_sequence_counts_its_real_steps():
    lengths = torch.tensor([5, 3, 2])
    model = PackedLSTM(features=8, hidden=16)
    summary = summarize(load_model(model, inputs=((_randn(3, 5, 8),), {"lengths": lengths})))
    assert summary.mult_adds == int(lengths.sum()) * 4 * 16 * (8 + 16)


def test_a_layer_the_counter_cannot_see_is_named_not_zero(monkeypatch):
    """Without the LSTM formula the counter sees nothing in the LSTM: torchinfo's figure stands
    in for it, and the table and the JSON say so."""
    monkeypatch.setattr(counting, "_missing_formulas", dict)
    summary = summarize(load_model(LSTMNet(), inputs=[_ids(10, 1, high=20)]))
    assert summary.uncounted_layers == ["encoder"]
    assert summary.mult_adds > 10 * 4 * 512 * (300 + 512)
    encoder = next(layer for layer in summary.layers if layer.name == "encoder")
    assert encoder.mult_adds and summary.mult_adds >= encoder.mult_adds
    assert "saw no mult-adds in encoder" in str(summary)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_scaled_dot_product_attention_is_counted(causal):
    """softmax(Q K^T) V on the CPU: torch 2.13's counter has no formula for its CPU kernel.
    Causal attention counts the whole square (see the README)."""
    batch, tokens, width, heads = 2, 128, 64, 4
    summary = summarize(load_model(Attention(heads, causal), inputs=[_randn(batch, tokens, width)]))
    per_matmul = batch * heads * tokens * tokens * (width // heads)
    assert summary.mult_adds == 2 * per_matmul


def test_grouped_query_attention_counts_each_query_head():
    """Fewer key/value heads than query heads: the kernel broadcasts each key/value head to its
    query heads, so the count is that of full attention (torch's own formula refused the shapes
    before 2.13, and the counter fell back to torchinfo's)."""
    batch, tokens, width, heads = 2, 32, 64, 8
    x = _randn(batch, tokens, width)
    summary = summarize(load_model(Attention(heads, kv_heads=2), inputs=[x]))
    assert summary.mult_adds_counter != "torchinfo"
    per_matmul = batch * heads * tokens * tokens * (width // heads)
    assert summary.mult_adds == 2 * per_matmul


def test_pruned_rows_and_total_add_up_and_the_dense_figure_is_shown():
    summary = summarize(load_model(_pruned_single_input_net(), inputs=[_randn(16, 1, 28, 28)]))
    kept = 10 * 25 // 2 + 10 + 20 * 250 // 2 + 20 + 320 * 50 // 2 + 50 + 50 * 10 // 2 + 10
    assert summary.total_params == kept
    assert sum(layer.params for layer in summary.layers if layer.depth == 1) == kept
    assert summary.dense_params == 21_840
    assert f"Total params: {kept:,} (21,840 dense, before pruning)" in str(summary)


def test_a_failed_counter_is_named_in_the_table():
    summary = summarize(load_model(ReturnsParameter(), inputs=[_randn(2, 8)]))
    assert summary.mult_adds_counter == "torchinfo"
    assert "counted by torchinfo's module hooks" in str(summary)


def test_a_module_called_six_times_has_six_numbered_rows(cli):
    result = cli("summary", f"{CASES}:Recurrent", "--input", "1x4x8x8")
    assert result.code == 0, result.err
    for index in range(1, 7):
        assert f"Conv2d (conv1): 1-{index} " in result.out
    hidden = cli(
        "summary", f"{CASES}:Recurrent", "--input", "1x4x8x8",
        "--row-settings", "depth,hide_recursive_layers",
    )  # fmt: skip
    assert "Conv2d: 1-1 " in hidden.out and "1-2" not in hidden.out


def test_units_pick_themselves(tmp_path, cli):
    (tmp_path / "tiny.py").write_text(
        "from torch import nn\n\ndef tiny():\n    return nn.Linear(8, 16)\n"
    )
    result = cli("summary", f"{tmp_path / 'tiny.py'}:tiny", "--input", "1x8")
    assert "Total mult-adds: 128\n" in result.out
    assert "Params size (kB): 0.58\n" in result.out
    assert "0.00" not in result.out


def test_columns_and_row_settings_take_torchinfos_names(cli):
    result = cli(
        "summary", f"{CASES}:SingleInputNet", "--input", "2x1x28x28",
        "--columns", "input_size,kernel_size,params_percent,trainable",
        "--row-settings", "ascii_only,depth",
    )  # fmt: skip
    assert result.code == 0, result.err
    header = result.out.splitlines()[2]
    for title in ("Input Shape", "Kernel Shape", "Param %", "Trainable"):
        assert title in header
    assert "Output Shape" not in header and "├─" not in result.out
    assert "+ Conv2d: 1-1 " in result.out and "[5, 5]" in result.out


def test_an_unknown_column_is_a_usage_error(cli):
    result = cli("summary", "relu", "--columns", "output_size,flops")
    assert result.code == 2 and "'flops'" in result.err


def test_train_mode_runs_in_train_and_leaves_the_model_as_it_came():
    model = ConvBatchNorm()
    model.bn.running_mean.copy_(_randn(8, seed=1))
    model.bn.eval()  # a frozen BatchNorm inside a training model: each flag must come back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    loaded = load_model(model, inputs=[_randn(4, 3, 8, 8)])
    seen = []
    model.bn.register_forward_pre_hook(lambda module, _: seen.append(module.training))
    summarize(loaded, mode="train", col_names=["output_size", "mult_adds"])
    assert seen and all(seen)
    assert [m.training for m in model.modules()] == flags == [True, True, False]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        ("DictParameter", ["--inputs", f"{CASES}:dict_parameter_inputs"]),
        ("DictWithNonTensors", ["--inputs", f"{CASES}:dict_positional_inputs"]),
        ("EmptyDictInput", ["--inputs", f"{CASES}:empty_dict_inputs"]),
        ("TakesNamedTuple", ["--inputs", f"{CASES}:namedtuple_inputs"]),
        ("TakesNothing", ["--inputs", f"{CASES}:no_inputs"]),
        ("PartlyScripted", ["--input", "2x1x8x8"]),
        ("TensorKernelSize", ["--input", "1x1x16", "--columns", "kernel_size,output_size"]),
        ("CategoricalOutput", ["--input", "1x10"]),
        ("SingleInputNet", []),
        ("ParameterHolder", []),
        ("module_list", []),
    ],
)
def test_what_torchinfo_summarizes_inspector_summarizes(cli, spec, options):
    result = cli("summary", f"{CASES}:{spec}", *options)
    assert result.code == 0, result.err
    assert "Total params: " in result.out


def test_a_whole_scripted_model_counts_its_mult_adds():
    model = torch.jit.script(LinearModel())
    summary = summarize(load_model(model, inputs=[_randn(64, 16)]))
    assert summary.mult_adds == 64 * (16 * 16 + 16 * 16 + 16)
    assert summary.output_shapes == [[64, 1]]


def test_a_forward_that_takes_nothing_is_run_and_counted():
    summary = summarize(load_model(TakesNothing(), inputs=((), {})))
    assert summary.output_shapes == [[2, 3]]
    assert summary.mult_adds == 2 * 6 * 3


def test_a_dict_input_with_a_label_beside_the_tensor():
    inputs = ({"tensor": _randn(1, 3, 8, 8), "label": "cat", "mask": None},)
    summary = summarize(load_model(DictWithNonTensors(), inputs=(inputs, {})))
    assert summary.output_shapes == [[1, 2, 6, 6]]
    assert summary.mult_adds == 2 * 6 * 6 * 3 * 3 * 3


def test_a_distribution_output_and_a_tensor_kernel_size_pass_torchinfo_1_8():
    categorical = summarize(load_model(CategoricalOutput(), inputs=[_randn(1, 10)]))
    assert categorical.total_params == 55
    kernel = summarize(load_model(TensorKernelSize(), inputs=[_randn(1, 1, 16)]))
    assert kernel.mult_adds == 2 * 14 * 3


def test_torchinfo_failing_after_the_forward_exits_3_naming_it(cli, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("unsupported output type")

    monkeypatch.setattr(torchinfo.model_statistics.ModelStatistics, "__init__", broken)
    result = cli("summary", "conv_bn_relu")
    assert result.code == 3
    assert "torchinfo failed after the forward ran" in result.err


def test_the_title_shows_the_inputs_asked_for(tmp_path, cli):
    (tmp_path / "ids.py").write_text(
        "import torch\n\ndef ids():\n    return (torch.randint(3, 17, (2, 5)),)\n"
    )
    result = cli("summary", f"{CASES}:LSTMNet", "--inputs", f"{tmp_path / 'ids.py'}:ids")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].endswith("(input 2x5 int64)")
    asked = cli("summary", f"{CASES}:LSTMNet", "--input", "2x5:int64:0..20")
    assert asked.out.splitlines()[0].endswith("(input 2x5:int64:0..20)")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_model_is_counted_on_its_device():
    model = SingleInputNet().cuda()
    summary = summarize(load_model(model, inputs=[_randn(2, 1, 28, 28).cuda()]))
    assert summary.mult_adds_counter == counting.MULT_ADDS_COUNTER
    assert next(model.parameters()).is_cuda


def test_a_scripted_part_is_listed_under_the_model(cli):
    """torchinfo 1.8.0 lists a scripted submodule above the model's own row, which then claims
    the scripted layer's parameters."""
    result = cli("summary", f"{CASES}:PartlyScripted", "--input", "2x1x8x8")
    rows = result.out.splitlines()[4:9]
    assert rows[0].startswith("PartlyScripted (PartlyScripted)") and "725" not in rows[0]
    assert [row.split(":")[0].strip("├─│└ ") for row in rows[1:]] == [
        "Conv2d (conv)",
        "Sequential (head)",
        "Flatten (0)",
        "Linear (1)",
    ]
    assert "Total params: 765" in result.out
