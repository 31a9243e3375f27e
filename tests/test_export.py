"""inspector export: every model exports, BatchNorm survives, the batch stays dynamic, writes are atomic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest
import torch
from _export_helpers import assert_matches_torch, give_batchnorm_statistics
from _params import registered_models
from conftest import split_steps
from onnx import numpy_helper

import inspector
from inspector.errors import InspectorError
from inspector.export import ExportResult, export_onnx
from inspector.export import exporter as export_module
from inspector.export.noise import exporter_failure
from inspector.loading import load_model

REPO = Path(__file__).resolve().parents[1]
USER_MODELS = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Baked(nn.Module):
        '''The lecture's habit: the batch (4 here) written into view().'''

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 5)

        def forward(self, x):
            return self.fc(x.view(4, -1))


    class Eig(nn.Module):
        '''An op with no ONNX translation.'''

        def forward(self, x):
            return torch.linalg.eigvals(x).real


    class Clash(nn.Module):
        '''Parameters named like the graph's inputs and outputs.'''

        def __init__(self):
            super().__init__()
            self.input = nn.Parameter(torch.randn(3))
            self.output = nn.Parameter(torch.randn(3))

        def forward(self, x):
            return x * self.input + self.output


    class Dropped(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(self.fc(x))


    class TwoInOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, a, b):
            return self.fc(a) + b, a * b
    """
)


@pytest.fixture
def user_models(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    path = folder / "user_models.py"
    path.write_text(USER_MODELS)
    return path


@pytest.fixture(scope="module")
def exercise_export(tmp_path_factory):
    """One authored export of the exercise model with real BatchNorm statistics, shared."""
    loaded = load_model("exercise_model")
    give_batchnorm_statistics(loaded.module)
    out = tmp_path_factory.mktemp("exercise") / "exercise_model.onnx"
    return loaded, export_onnx(loaded, out)


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# --- every registered model ---------------------------------------------------------------------


PLUMBING = {"Shape", "Expand", "CastLike", "Constant", "Concat", "Gather", "Squeeze", "Unsqueeze"}
# The lecture's Figure 1 as Netron draws it: FACTS.md's optimized counts plus the 34 BatchNorms.
MOBILENET_V3_SMALL_OPS = {
    "Conv": 52, "BatchNormalization": 34, "HardSwish": 19, "Relu": 14, "ReduceMean": 10,
    "HardSigmoid": 9, "Mul": 9, "Add": 6, "Gemm": 2, "Reshape": 1,
}  # fmt: skip


@pytest.mark.parametrize("name", registered_models())
def test_every_registered_model_exports_with_a_dynamic_batch(name, tmp_path):
    loaded = load_model(name)
    batchnorms = give_batchnorm_statistics(loaded.module)
    result = export_onnx(loaded, tmp_path / f"{name}.onnx")

    assert result.path.is_file() and _listing(tmp_path) == [f"{name}.onnx"]
    assert result.dynamic_batch and result.input_names == ["input"]
    assert result.output_names == ["output"]
    proto = onnx.load(str(result.path))
    for value in [*proto.graph.input, *proto.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param, value.name
    # The authored graph: every BatchNorm kept, no shape plumbing.
    assert result.ops.get("BatchNormalization", 0) == batchnorms
    assert not PLUMBING & set(result.ops), result.ops
    if name == "mobilenet_v3_small":
        assert result.ops == MOBILENET_V3_SMALL_OPS
    # The file runs at two batch sizes other than the traced one, on seeded random inputs.
    for batch_size, seed in ((1, 11), (3, 12)):
        assert_matches_torch(result.path, loaded, batch_size, seed)


# --- the authored graph -------------------------------------------------------------------------


def test_authored_graph_keeps_one_node_per_layer_and_no_shape_plumbing(exercise_export):
    _, result = exercise_export
    assert result.ops == {"Conv": 1, "BatchNormalization": 1, "Relu": 1, "Reshape": 1, "Gemm": 1}


def test_batchnorm_survives_authored_export_with_its_running_statistics(tmp_path):
    loaded = load_model("conv_bn_relu", input_shapes=[(2, 3, 10, 10)])
    assert give_batchnorm_statistics(loaded.module) == 1
    result = export_onnx(loaded, tmp_path / "cbr.onnx")
    assert result.ops == {"Conv": 1, "BatchNormalization": 1, "Relu": 1}

    proto = onnx.load(str(result.path))
    (bn,) = [node for node in proto.graph.node if node.op_type == "BatchNormalization"]
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    layer = loaded.module.bn
    expected = [layer.weight, layer.bias, layer.running_mean, layer.running_var]
    for name, tensor in zip(bn.input[1:], expected, strict=True):
        torch.testing.assert_close(torch.tensor(weights[name]), tensor.detach())
    assert_matches_torch(result.path, loaded, batch_size=5, seed=3)


def test_optimized_graph_folds_batchnorm_into_conv(tmp_path):
    loaded = load_model("conv_bn_relu", input_shapes=[(2, 3, 10, 10)])
    give_batchnorm_statistics(loaded.module)
    result = export_onnx(loaded, tmp_path / "cbr.onnx", graph="optimized")
    assert "BatchNormalization" not in result.ops and result.ops["Conv"] == 1
    assert_matches_torch(result.path, loaded, batch_size=4, seed=5)


def test_torchscript_exporter_also_keeps_batchnorm_and_a_dynamic_batch(tmp_path):
    loaded = load_model("conv_bn_relu", input_shapes=[(2, 3, 10, 10)])
    give_batchnorm_statistics(loaded.module)
    result = export_onnx(loaded, tmp_path / "ts.onnx", exporter="torchscript")
    assert result.exporter == "torchscript" and result.ops["BatchNormalization"] == 1
    assert "Identity" not in result.ops
    assert_matches_torch(result.path, loaded, batch_size=3, seed=6)


def test_several_inputs_and_outputs_are_numbered(user_models, tmp_path):
    loaded = load_model(f"{user_models}:TwoInOut", input_shapes=[(2, 6), (2, 6)])
    result = export_onnx(loaded, tmp_path / "two.onnx")
    assert result.input_names == ["input_0", "input_1"]
    assert result.output_names == ["output_0", "output_1"]
    assert_matches_torch(result.path, loaded, batch_size=5, seed=7)


def test_weights_named_input_and_output_do_not_clash_with_the_graph_names(user_models, tmp_path):
    loaded = load_model(f"{user_models}:Clash", input_shapes=[(2, 3)])
    result = export_onnx(loaded, tmp_path / "clash.onnx")
    assert result.input_names == ["input"] and result.output_names == ["output"]
    assert_matches_torch(result.path, loaded, batch_size=4, seed=1)


def test_a_model_in_training_mode_exports_its_eval_graph_and_stays_in_training(
    user_models, tmp_path
):
    loaded = load_model(f"{user_models}:Dropped", input_shapes=[(2, 8)])
    loaded.module.train()
    result = export_onnx(loaded, tmp_path / "dropped.onnx")
    assert loaded.module.training and loaded.module.drop.training
    loaded.module.eval()  # compare against the eval graph: no dropout
    assert_matches_torch(result.path, loaded, batch_size=3, seed=2)


# --- the written file ---------------------------------------------------------------------------


def test_metadata_records_model_parameters_versions_and_shapes(exercise_export):
    loaded, result = exercise_export
    meta = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert meta["inspector.model"] == "exercise_model"
    assert meta["inspector.parameters"] == str(sum(p.numel() for p in loaded.module.parameters()))
    assert meta["inspector.input_shapes"] == "32,3,128,128"
    assert meta["torch.version"] == torch.__version__
    assert meta["inspector.version"] and meta["inspector.graph"] == "authored"


def test_shape_inference_puts_shapes_on_the_inner_edges(exercise_export):
    _, result = exercise_export
    proto = onnx.load(str(result.path))
    shapes = {v.name: v.type.tensor_type.shape for v in proto.graph.value_info}
    relu = next(node for node in proto.graph.node if node.op_type == "Relu")
    dims = shapes[relu.output[0]].dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [256, 16, 16]


def test_small_models_are_one_file_that_passes_the_full_checker(exercise_export):
    _, result = exercise_export
    assert _listing(result.path.parent) == ["exercise_model.onnx"]
    onnx.checker.check_model(str(result.path), full_check=True)


def test_the_checker_reads_the_graph_without_weights_and_the_model_keeps_them(exercise_export):
    from onnxscript import ir

    _, result = exercise_export
    model = ir.serde.deserialize_model(onnx.load(str(result.path)))
    before = ir.serde.serialize_model(model).SerializeToString()
    light = export_module._weightless_proto(model)
    big = {t.name for t in onnx.load(str(result.path)).graph.initializer if len(t.raw_data) > 1024}
    assert big and not big & {t.name for t in light.graph.initializer}
    assert big <= {v.name for v in light.graph.input}  # typed, so shape inference still sees them
    assert ir.serde.serialize_model(model).SerializeToString() == before


def test_past_the_size_limit_weights_go_beside_the_file_under_its_final_name(tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "SINGLE_FILE_LIMIT", 0)  # as if the model were > 2 GB
    linear = {
        "in_features": 16,
        "out_features": 32,
    }  # a weight past ir.save's 256-byte inline limit
    loaded = load_model("linear", kwargs=linear, input_shapes=[(2, 16)])
    result = export_onnx(loaded, tmp_path / "big.onnx")
    assert _listing(tmp_path) == ["big.onnx", "big.onnx.data"]
    proto = onnx.load(str(result.path), load_external_data=False)
    locations = {
        entry.value
        for tensor in proto.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    }
    assert locations == {"big.onnx.data"}
    assert_matches_torch(result.path, loaded, batch_size=3, seed=4)


def test_result_prints_itself_and_serializes(exercise_export):
    _, result = exercise_export
    assert isinstance(result, ExportResult)
    text = str(result)
    assert "exercise_model" in text and "BatchNormalization 1" in text and "dynamic batch" in text
    data = json.loads(json.dumps(result.to_dict()))
    assert data["path"] == str(result.path) and data["ops"]["Conv"] == 1
    assert data["opset"] == 18 and data["exporter"] == "dynamo"


# --- the command line ---------------------------------------------------------------------------


def test_cli_writes_name_onnx_here_and_hides_exporter_noise(tmp_path):
    # A fresh process: torch's registry warnings are printed once per process, and pytest would
    # swallow Python warnings in-process.
    argv = [sys.executable, "-m", "inspector", "export", "relu"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _listing(tmp_path) == ["relu.onnx"]
    assert run.stdout.startswith("exported relu -> relu.onnx") and "ops: Relu 1" in run.stdout
    err, steps = split_steps(run.stderr)
    assert err == "", "exporter noise leaked"
    assert steps[0] == "loading relu" and steps[1].startswith("exporting relu to ONNX"), steps


def test_verbose_shows_the_exporter_progress_on_stderr(tmp_path, cli):
    result = cli("export", "relu", "-o", tmp_path / "relu.onnx", "--verbose")
    assert result.code == 0
    assert "[torch.onnx]" in result.err and "[torch.onnx]" not in result.out
    assert result.out.startswith("exported relu")


def test_baked_batch_is_refused_naming_the_batch_and_the_fix(user_models, cli):
    """Baked runs at its example batch 4 and nowhere else: the advice is to stop fixing it."""
    folder = user_models.parent
    out = folder / "baked.onnx"
    result = cli("export", f"{user_models}:Baked", "--input-shape", "4,3,4", "-o", out)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "batch" in result.err and "x.view(x.size(0), -1)" in result.err
    assert "--static-batch" in result.err
    assert _listing(folder) == ["user_models.py"]


def test_a_model_that_fails_at_its_own_example_gets_torchs_reason_not_batch_advice(
    user_models, cli
):
    """At batch 1 Baked (view(4, -1)) fails with the inputs the user gave: blaming the batch
    axis of the export would send the user the wrong way."""
    folder = user_models.parent
    out = folder / "baked.onnx"
    result = cli("export", f"{user_models}:Baked", "--input-shape", "1,3,4", "-o", out)
    assert result.code == 2
    assert "forward failed on inputs 1x3x4" in result.err
    assert "mat1 and mat2 shapes cannot be multiplied" in result.err
    assert "x.view(x.size(0), -1)" not in result.err
    assert _listing(folder) == ["user_models.py"]


def test_baked_batch_exports_with_static_batch(user_models, cli):
    out = user_models.parent / "baked.onnx"
    result = cli(
        "export", f"{user_models}:Baked", "--input-shape", "4,3,4", "-o", out, "--static-batch"
    )
    assert result.code == 0, result.err
    dim = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_value == 4 and not dim.dim_param


def test_exporter_failure_is_one_line_naming_step_and_op(user_models, cli):
    folder = user_models.parent
    out = folder / "eig.onnx"
    out.write_bytes(b"an earlier export")
    result = cli("export", f"{user_models}:Eig", "--input-shape", "2,3,3", "-o", out)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "step 3/3" in result.err and "aten.linalg_eig" in result.err
    assert "\x1b[" not in result.err and "Traceback" not in result.err
    assert out.read_bytes() == b"an earlier export"
    assert _listing(folder) == ["eig.onnx", "user_models.py"]


def test_exporter_failure_message_from_ansi_coloured_text():
    error = RuntimeError(
        "Failed to export. \x1b[96mThis is step 1/3\x1b[0m of exporting.\n\n"
        "## Exception summary\n\n<class 'torch.SomeError'>: the real reason\nmore detail\n\n"
        'The following call raised this error:\n  File "/a/b/net.py", line 9, in forward\n'
        "    if x.sum() > 0:\n"
    )
    line = exporter_failure(error)
    assert line == (
        "export failed at step 1/3 (torch.export), at net.py:9 `if x.sum() > 0:`: the real reason"
    )


# --- atomic writes ------------------------------------------------------------------------------


def test_interrupt_after_writing_leaves_the_destination_untouched(tmp_path, monkeypatch, cli):
    out = tmp_path / "relu.onnx"
    out.write_bytes(b"keep me")

    def interrupted(staged, destination):
        assert staged.is_file()  # the new file was fully written before the interrupt
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "_move_into_place", interrupted)
    result = cli("export", "relu", "-o", out)
    assert result.code == 130
    assert out.read_bytes() == b"keep me"
    assert _listing(tmp_path) == ["relu.onnx"]


def test_a_failing_check_after_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(model, loaded, inputs, graph, exporter):
        model.graph.node(0).op_type = "NoSuchOp"  # the checker must reject this file

    monkeypatch.setattr(export_module, "add_metadata", broken)
    with pytest.raises(InspectorError, match="ONNX checker"):
        export_onnx(load_model("relu"), tmp_path / "relu.onnx")
    assert _listing(tmp_path) == []


def test_export_replaces_an_existing_file(tmp_path):
    out = tmp_path / "relu.onnx"
    out.write_bytes(b"old")
    export_onnx(load_model("relu"), out)
    assert onnx.load(str(out)).graph.node[0].op_type == "Relu"
    assert _listing(tmp_path) == ["relu.onnx"]


@pytest.mark.parametrize(
    "where, message",
    [
        ("missing/relu.onnx", "does not exist"),
        (".", "is a folder"),
        ("relu.txt", "must end in .onnx"),
    ],
)
def test_bad_destinations_are_user_errors(where, message, tmp_path, cli):
    result = cli("export", "relu", "-o", tmp_path / where)
    assert result.code == 2 and message in result.err
    assert _listing(tmp_path) == []


def test_read_only_folder_is_a_user_error(tmp_path, monkeypatch, cli):
    from inspector.util import leftovers

    made = leftovers.owned_folder

    def refuse(prefix, parent=None):
        if prefix == ".inspector-export-":
            raise PermissionError(13, "Permission denied")
        return made(prefix, parent)

    # As root a chmod'ed folder stays writable, so refuse the staging folder itself.
    monkeypatch.setattr(leftovers, "owned_folder", refuse)
    result = cli("export", "relu", "-o", tmp_path / "relu.onnx")
    assert result.code == 2 and "cannot write to folder" in result.err
    assert "Permission denied" in result.err and _listing(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_for_real(tmp_path, cli):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = cli("export", "relu", "-o", folder / "relu.onnx")
    finally:
        folder.chmod(0o755)
    assert result.code == 2 and _listing(folder) == []


def test_public_torch_onnx_export_path_gives_the_same_graph(tmp_path, monkeypatch):
    # export_onnx reuses torch.onnx's internal registry; without those internals it must fall back.
    loaded = load_model("conv_bn_relu", input_shapes=[(2, 3, 10, 10)])
    give_batchnorm_statistics(loaded.module)
    monkeypatch.setattr(export_module, "_reusable_exporter", lambda opset: None)
    result = export_onnx(loaded, tmp_path / "public.onnx")
    assert result.ops == {"Conv": 1, "BatchNormalization": 1, "Relu": 1}
    assert_matches_torch(result.path, loaded, batch_size=3, seed=2)


def test_a_private_export_without_our_keywords_falls_back_to_the_public_api(monkeypatch):
    # torch 2.10's private core export takes no opset_version: calling it would fail every export.
    from torch.onnx._internal.exporter import _core

    def export_of_torch_2_10(model, args=(), kwargs=None, *, registry=None, dynamic_shapes=None):
        raise AssertionError("not to be called")

    export_module._reusable_exporter.cache_clear()
    monkeypatch.setattr(_core, "export", export_of_torch_2_10)
    try:
        assert export_module._reusable_exporter(18) is None
    finally:
        export_module._reusable_exporter.cache_clear()


def test_an_opset_the_exporter_silently_ignores_is_refused(tmp_path, cli):
    # The dynamo exporter cannot convert to opset 13 and quietly writes 18 instead.
    out = tmp_path / "relu.onnx"
    result = cli("export", "relu", "-o", out, "--opset", "13")
    assert result.code == 2 and "cannot write opset 13" in result.err
    assert _listing(tmp_path) == []


def test_another_opset_is_written_as_asked(tmp_path):
    result = export_onnx(load_model("relu"), tmp_path / "relu.onnx", opset=17)
    versions = {o.domain: o.version for o in onnx.load(str(result.path)).opset_import}
    assert result.opset == 17 and versions[""] == 17


def test_native_exporter_output_is_hidden_too(tmp_path, capfd):
    from inspector.cli import main

    # The TorchScript exporter prints its graph from C++ when it fails.
    code = main(
        [
            "export",
            "relu",
            "-o",
            str(tmp_path / "r.onnx"),
            "--exporter",
            "torchscript",
            "--opset",
            str(onnx.defs.onnx_opset_version()),  # onnx knows it; the TorchScript exporter not
        ]
    )
    out, err = capfd.readouterr()
    err, steps = split_steps(err)
    assert code == 2 and out == "" and steps[-1].startswith("exporting relu to ONNX")
    assert err.count("\n") == 1 and err.startswith("inspector: error: relu: export failed")


@pytest.mark.parametrize(
    ("options", "python", "flag"),
    [
        ({"opset": 999}, "opset=999", "--opset 999"),
        ({"opset": 8, "exporter": "torchscript"}, "opset=8", "--opset 8"),
        ({"dynamic_dims": ["nothing.1=sequence"]}, "dynamic_dims='nothing.1=sequence'", None),
    ],
)
def test_an_error_names_the_parameter_from_python_and_the_flag_from_the_cli(
    cli, tmp_path, options, python, flag
):
    with pytest.raises(InspectorError) as raised:
        export_onnx(load_model("relu"), tmp_path / "relu.onnx", **options)
    assert str(raised.value).startswith(python) and "--" not in str(raised.value)
    if flag:
        argv = [f"--{k}={v}" for k, v in options.items()]
        result = cli("export", "relu", "-o", tmp_path / "relu.onnx", *argv)
        assert result.code == 2 and result.err.startswith(f"inspector: error: {flag}:")


def test_repro_without_localize_names_the_parameters_from_python(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(InspectorError, match=r"^repro needs localize=True") as raised:
        inspector.verify(torch.nn.Linear(3, 2), torch.randn(2, 3), repro=tmp_path / "repro")
    assert "--" not in str(raised.value)


def test_a_used_save_data_folder_names_the_parameter_from_python(tmp_path):
    used = tmp_path / "data"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    torch.manual_seed(0)
    with pytest.raises(InspectorError, match=r"^save_data='.*data' already exists"):
        inspector.verify(torch.nn.Linear(3, 2), torch.randn(2, 3), save_data=used)
    assert (used / "keep.txt").read_text() == "mine"
