"""verify on real exports: every registered model, tampered files, --localize, golden data, NaN."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from _verify_helpers import TINY_SHAPE, TINY_SPEC, export, nudge, randomize_batchnorm, tamper
from onnx import numpy_helper
from torch import nn

import inspector
from inspector import models
from inspector.loading import load_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """TinyNet (non-trivial BatchNorm statistics) exported once for the whole module."""
    loaded = load_model(TINY_SPEC, input_shapes=[tuple(map(int, TINY_SHAPE.split(",")))])
    return loaded, export(loaded, tmp_path_factory.mktemp("tiny") / "tiny.onnx")


# Exported (authored graph) and verified with non-trivial BatchNorm statistics by
# tests/test_mobilenetv3.py::test_verify_passes; a second 10-40 s export each adds nothing here.
VERIFIED_IN_THEIR_OWN_TESTS = {"mobilenet_v3_small", "mobilenet_v3_large"}


def _registered() -> list:
    skip = pytest.mark.skip(reason="verified in test_mobilenetv3.py::test_verify_passes")
    return [
        pytest.param(name, marks=skip) if name in VERIFIED_IN_THEIR_OWN_TESTS else name
        for name in models.list_models()
    ]


@pytest.mark.parametrize("name", _registered())
def test_every_registered_model_verifies(name):
    loaded = load_model(name)
    randomize_batchnorm(loaded.module, seed=7)
    report = inspector.verify(loaded, seeds=2)
    assert report, report
    # Seeded random inputs at batch 1 and at a batch the export was not traced with.
    assert {run.batch_size for run in report.runs} == {
        1,
        5 if loaded.input_shapes[0][0] == 3 else 3,
    }
    assert sorted({run.seed for run in report.runs}) == [0, 1]


def test_a_faithful_export_passes_with_exit_0(cli, tiny, tmp_path):
    _, path = tiny
    result = cli(
        "verify",
        TINY_SPEC,
        "--input-shape",
        TINY_SHAPE,
        "--onnx",
        path,
        "--report",
        tmp_path / "report.json",
    )
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("PASSED | ")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["passed"] is True and data["atol"] == 1e-4 and data["rtol"] == 1e-3
    assert [(run["seed"], run["batch_size"]) for run in data["runs"]] == [
        (0, 1),
        (1, 1),
        (2, 1),
        (0, 3),
        (1, 3),
        (2, 3),
    ]
    assert data["runs"][0]["outputs"][0]["name"] == "output"
    assert data["runs"][0]["outputs"][0]["shape"] == [1, 5]


def test_a_tampered_weight_fails_with_exit_1(cli, tiny, tmp_path):
    _, path = tiny
    bad = tamper(path, tmp_path / "tampered.onnx", "block.0.weight", nudge)
    result = cli(
        "verify",
        TINY_SPEC,
        "--input-shape",
        TINY_SHAPE,
        "--onnx",
        bad,
        "--report",
        tmp_path / "report.json",
    )
    assert result.code == 1, result.err
    assert result.out.startswith("FAILED | ")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["passed"] is False
    assert all(run["outputs"][0]["mismatched"] > 0 for run in data["runs"])


@pytest.mark.parametrize(
    "initializer, layer, layer_type",
    [
        ("stem.1.running_var", "stem.1", "BatchNorm2d"),
        ("block.0.weight", "block.0", "Conv2d"),
        ("head.bias", "head", "Linear"),
    ],
)
def test_localize_names_the_layer_that_was_broken(
    cli, tiny, tmp_path, initializer, layer, layer_type
):
    _, path = tiny
    bad = tamper(path, tmp_path / "tampered.onnx", initializer, nudge)
    result = cli(
        "verify",
        TINY_SPEC,
        "--input-shape",
        TINY_SHAPE,
        "--onnx",
        bad,
        "--localize",
        "--seeds",
        "1",
        "--report",
        tmp_path / "report.json",
    )
    assert result.code == 1, result.err
    assert f"root cause: module {layer} ({layer_type})" in result.out
    divergence = json.loads((tmp_path / "report.json").read_text())["first_divergence"]
    assert divergence["layer"] == layer and divergence["type"] == layer_type
    assert divergence["mismatched"] > 0 and divergence["max_abs_diff"] > 1e-3


def test_localize_on_a_faithful_export_finds_no_divergence(tiny):
    loaded, path = tiny
    report = inspector.verify(loaded, onnx=path, seeds=1, localize=True)
    assert report, report
    assert report.first_divergence is None
    assert report.to_dict()["first_divergence"] is None
    assert "all agree" in str(report)


def test_localize_raises_no_false_alarm_where_batchnorm_was_folded(tiny, tmp_path):
    loaded, _ = tiny
    from inspector.export import export_onnx

    folded = export_onnx(loaded, tmp_path / "optimized.onnx", graph="optimized")
    assert "BatchNormalization" not in folded.ops
    report = inspector.verify(loaded, onnx=folded.path, seeds=1, localize=True)
    assert report, report
    assert report.first_divergence is None


def test_inputs_of_ones_are_never_the_only_check(tmp_path):
    """Swapping two input columns of a Linear weight is invisible on ones, not on random inputs."""
    model = nn.Linear(6, 4).eval()
    ones = torch.ones(2, 6)
    path = export(load_model_from(model, ones), tmp_path / "linear.onnx")

    def swap_columns(weight):
        weight[:, [0, 1]] = weight[:, [1, 0]]
        return weight

    bad = tamper(path, tmp_path / "swapped.onnx", "weight", swap_columns)
    report = inspector.verify(model, ones, onnx=bad, localize=True)
    assert not report
    given = [run for run in report.runs if run.seed is None]
    assert len(given) == 1 and given[0]  # the ones alone would have passed
    assert not all(run for run in report.runs if run.seed is not None)
    # A model without submodules localizes to itself.
    assert report.first_divergence.layer == "(whole model)"
    assert report.first_divergence.type == "Linear"


def test_an_output_of_another_shape_is_a_mismatch(tmp_path):
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    wider = nn.Linear(4, 6).eval()
    path = export(load_model_from(wider, x), tmp_path / "wider.onnx")
    report = inspector.verify(nn.Linear(4, 5).eval(), x, onnx=path, seeds=1)
    assert not report
    run = report.runs[0]
    assert run.outputs[0].mismatched > 0
    assert "PyTorch gives float32[2, 5], onnxruntime float32[2, 6]" in run.notes[0]
    assert "FAILED" in str(report) and "onnxruntime float32[2, 6]" in str(report)


class LogNet(nn.Module):
    """log of a random-normal input: NaN wherever the input is negative, in both runtimes."""

    def forward(self, x):
        return torch.log(x) * 2


def test_nan_in_both_runtimes_is_agreement(tmp_path):
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    assert torch.isnan(LogNet()(x)).any()
    report = inspector.verify(LogNet(), x, seeds=2)
    assert report, report
    # ... but the comparison proves little there: a warning, and the count in JSON.
    assert "PyTorch's own output 'output' holds" in str(report)
    counts = report.to_dict()["expected_nonfinite"]["output"]
    expected_nan = sum(d.expected_nan for run in report.runs for d in run.outputs)
    assert counts["nan"] == expected_nan > 0 and counts["runs"] == len(report.runs)


def test_a_fixed_batch_file_is_checked_at_its_own_batch(tiny, tmp_path):
    loaded, _ = tiny
    from inspector.export import export_onnx

    fixed = export_onnx(loaded, tmp_path / "fixed.onnx", dynamic_batch=False).path
    report = inspector.verify(loaded, onnx=fixed, seeds=1)
    assert report, report
    assert [run.batch_size for run in report.runs] == [loaded.input_shapes[0][0]]


def test_verify_restores_the_training_flags(tiny):
    loaded, path = tiny
    loaded.module.train()
    loaded.module.stem.eval()
    try:
        assert inspector.verify(loaded, onnx=path, seeds=1)
        assert loaded.module.training and loaded.module.block.training
        assert not loaded.module.stem.training
    finally:
        loaded.module.eval()


def test_save_data_then_verify_with_data_round_trips(cli, tiny, tmp_path):
    _, path = tiny
    data = tmp_path / "golden"
    saved = cli(
        "verify",
        TINY_SPEC,
        "--input-shape",
        TINY_SHAPE,
        "--onnx",
        path,
        "--save-data",
        data,
        "--seeds",
        "2",
        "--batch-sizes",
        "1,4",
    )
    assert saved.code == 0, saved.err
    sets = sorted(p.name for p in data.iterdir())
    assert sets == [f"test_data_set_{n}" for n in range(4)]
    inputs = numpy_helper.to_array(onnx.load_tensor(str(data / "test_data_set_3" / "input_0.pb")))
    assert inputs.shape == (4, 3, 16, 16) and inputs.std() > 0.5  # random normal, not ones

    again = cli("verify", path, "--data", data)
    assert again.code == 0, again.err
    assert again.out.count("test_data_set_") == 4

    target = data / "test_data_set_2" / "output_0.pb"
    tensor = onnx.load_tensor(str(target))
    values = numpy_helper.to_array(tensor).copy()
    values[0, 0] += 0.05
    target.write_bytes(numpy_helper.from_array(values, tensor.name).SerializeToString())
    altered = cli("verify", path, "--data", data)
    assert altered.code == 1
    assert altered.out.startswith("FAILED | tiny.onnx: 1 of 4 run(s) mismatch")


def test_save_data_refuses_a_used_folder_before_any_work(cli, tmp_path):
    used = tmp_path / "golden"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    result = cli("verify", "no_such_model", "--save-data", used)
    assert result.code == 2
    assert "already exists" in result.err
    assert [p.name for p in used.iterdir()] == ["keep.txt"]


def test_a_report_in_a_missing_folder_is_refused_first(cli, tmp_path):
    result = cli("verify", "exercise_model", "--report", tmp_path / "nope" / "r.json")
    assert result.code == 2
    assert result.err.startswith("inspector: error: --report ")


def test_an_invalid_onnx_file_is_a_user_error(cli, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(256))
    result = cli("verify", TINY_SPEC, "--input-shape", TINY_SHAPE, "--onnx", junk)
    assert result.code == 2
    assert result.err.startswith("inspector: error: ") and len(result.err.splitlines()) == 1


def load_model_from(module, *inputs):
    from inspector.loading import LoadedModel

    return LoadedModel(type(module).__name__, module, [tuple(t.shape) for t in inputs])


def test_localize_looks_at_a_failing_run_not_at_the_given_ones(tmp_path):
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    ones = torch.ones(2, 6)
    path = export(load_model_from(model, ones), tmp_path / "mlp.onnx")

    def swap_columns(weight):
        weight[:, [2, 3]] = weight[:, [3, 2]]
        return weight

    bad = tamper(path, tmp_path / "swapped.onnx", "0.weight", swap_columns)
    report = inspector.verify(model, ones, onnx=bad, seeds=1, localize=True)
    assert not report
    assert report.first_divergence is not None, report
    assert report.first_divergence.layer == "0"


def test_the_passed_line_names_the_export_not_a_cache_file(cli, tiny):
    """verify MODEL's headline says which export it checked in words (the cache's file name is a
    hash that means nothing to a reader); with --onnx it names the file given."""
    from inspector.export.cache import cache_dir

    _, path = tiny
    model = [TINY_SPEC, "--input-shape", TINY_SHAPE]
    cached = cli("verify", *model)
    assert cached.code == 0, cached.err
    headline = cached.out.splitlines()[0]
    assert headline.startswith("PASSED | ") and "cached export, authored graph)" in headline
    assert str(cache_dir()) not in cached.out and ".onnx" not in headline
    temporary = cli("verify", *model, "--no-cache")
    assert "temporary export, authored graph)" in temporary.out.splitlines()[0]
    given = cli("verify", *model, "--onnx", path)
    assert given.out.splitlines()[0].endswith(f"; {path})")
