"""Verdicts a user can trust: no vacuous PASSED behind a zero head, no false FAILED at 1e8, per-output
tolerances for dict outputs, and a root cause with a repro that fails without PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from _trust_models import spec
from _verify_helpers import export, nudge, tamper

import inspector
from inspector.loading import load_model

IMAGE = "2,3,16,16"


def _loaded(name: str, shape: str = IMAGE):
    return load_model(spec(name), input_shapes=[tuple(map(int, shape.split(",")))])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each model exported once for the module: name -> (loaded, path)."""
    folder = tmp_path_factory.mktemp("trust")
    cache = {}

    def get(name: str, shape: str = IMAGE):
        if name not in cache:
            loaded = _loaded(name, shape)
            cache[name] = loaded, export(loaded, folder / f"{name}.onnx")
        return cache[name]

    return get


def zero_channel(weight: np.ndarray) -> np.ndarray:
    weight[3] = 0.0
    return weight


def change_one_weight(weight: np.ndarray) -> np.ndarray:
    weight[7, _livest_channel()] += 0.5
    return weight


def _livest_channel() -> int:
    """The pooled feature HugeNet's fc reads most of, on its example input: a weight on a channel
    the ReLUs leave at 0 would change nothing (which channels live depends on torch's seeded
    weights, so it is found, not named)."""
    loaded = _loaded("HugeNet")
    model = loaded.module
    with torch.inference_mode():
        pooled = model.pool(model.features(*loaded.example_inputs().args)).flatten(1)
    return int(pooled.abs().mean(0).argmax())


def _verify(cli, name, onnx, tmp_path, *extra, shape=IMAGE):
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    result = cli(
        "verify", spec(name), "--input-shape", shape, "--onnx", onnx, "--report", report, *extra
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return result, data


# --- a zero-initialized head --------------------------------------------------------------------


def test_a_zero_head_export_is_proven_by_its_modules(cli, exported, tmp_path):
    _, path = exported("ZeroHeadNet")
    result, data = _verify(cli, "ZeroHeadNet", path, tmp_path)
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("PASSED | ")
    assert "the outputs cannot tell a right export from a wrong one" in result.out
    assert "every element is 0" in result.out
    checked = data["intermediates"]
    assert checked["decisive"] and checked["passed"] and checked["diverging"] == []
    assert checked["compared"] >= 9  # stem.0 .. block.2, pool, head and the whole model


@pytest.mark.parametrize(
    "initializer, change, root",
    [("stem.0.weight", zero_channel, "stem.0"), ("block.0.weight", nudge, "block.0")],
    ids=["a zeroed channel", "a changed weight"],
)
def test_broken_layers_behind_a_zero_head_fail(cli, exported, tmp_path, initializer, change, root):
    _, path = exported("ZeroHeadNet")
    bad = tamper(path, tmp_path / "broken.onnx", initializer, change)
    result, data = _verify(cli, "ZeroHeadNet", bad, tmp_path)
    assert result.code == 1, result.out + result.err
    assert result.out.startswith("FAILED | ")
    assert "the outputs match in 6 run(s), but" in result.out
    assert all(output["mismatched"] == 0 for run in data["runs"] for output in run["outputs"])
    checked = data["intermediates"]
    assert checked["decisive"] and not checked["passed"]
    assert checked["root_cause"]["layer"] == root
    assert checked["root_cause"]["type"] == "Conv2d"
    assert data["passed"] is False


# --- activations of 1e8 -------------------------------------------------------------------------


@pytest.mark.parametrize("graph", ["authored", "optimized"])
def test_a_correct_export_with_huge_activations_passes(tmp_path, graph):
    from inspector.export import export_onnx

    loaded = _loaded("HugeNet")
    path = export_onnx(loaded, tmp_path / f"huge_{graph}.onnx", graph=graph).path
    report = inspector.verify(loaded, onnx=path)
    assert report, report
    peaks = [diff.peak for run in report.runs for diff in run.outputs]
    assert min(peaks) > 1e7  # the scale the test is about
    worst = max(diff.max_abs_diff for run in report.runs for diff in run.outputs)
    assert worst > 1.0  # rounding at that scale is far above atol, and still no mismatch
    assert report.intermediates is None  # the outputs themselves discriminate


@pytest.mark.parametrize(
    "initializer, change",
    [("features.6.weight", zero_channel), ("fc.weight", change_one_weight)],
    ids=["a zeroed channel", "one changed weight"],
)
def test_real_faults_with_huge_activations_still_fail(cli, exported, tmp_path, initializer, change):
    _, path = exported("HugeNet")
    bad = tamper(path, tmp_path / "broken.onnx", initializer, change)
    result, data = _verify(cli, "HugeNet", bad, tmp_path)
    assert result.code == 1, result.out + result.err
    failing = [o for run in data["runs"] for o in run["outputs"] if o["mismatched"]]
    assert failing and all(o["worst"] and o["required_atol"] > 0 for o in failing)
    if initializer == "fc.weight":  # one class of 1000 is wrong, in every run
        assert all(o["worst"]["index"][-1] == 7 for o in failing)


# --- dict outputs with tolerances of their own --------------------------------------------------


def shift_boxes(bias: np.ndarray) -> np.ndarray:
    return bias + np.float32(0.005)  # boxes are bias * 100: 0.5 pixels off


def shift_scores(bias: np.ndarray) -> np.ndarray:
    return bias + np.float32(0.05)


@pytest.fixture
def detector(exported):
    return exported("DetectorHead", "2,16")


def test_dict_outputs_are_judged_each_with_its_own_tolerance(cli, detector, tmp_path):
    _, path = detector
    off = tamper(path, tmp_path / "boxes_off.onnx", "boxes.bias", shift_boxes)
    args = ("DetectorHead", off, tmp_path)
    plain, data = _verify(cli, *args, shape="2,16")
    assert plain.code == 1
    verdicts = {o["name"]: o["mismatched"] > 0 for o in data["runs"][0]["outputs"]}
    assert verdicts == {"boxes": True, "scores": False}

    loose, data = _verify(cli, *args, "--atol", "boxes=1", shape="2,16")
    assert loose.code == 0, loose.out
    assert data["tolerances"] == {"boxes": {"atol": 1.0, "rtol": 1e-3}}
    atols = {o["name"]: o["atol"] for o in data["runs"][0]["outputs"]}
    assert atols == {"boxes": 1.0, "scores": 1e-4}
    assert "boxes: atol 1" in loose.out

    both = tamper(off, tmp_path / "both_off.onnx", "scores.bias", shift_scores)
    still, data = _verify(cli, "DetectorHead", both, tmp_path, "--atol", "boxes=1", shape="2,16")
    assert still.code == 1  # the boxes' tolerance does not loosen the scores
    failing = {o["name"] for run in data["runs"] for o in run["outputs"] if o["mismatched"]}
    assert failing == {"scores"}
    relaxed, _ = _verify(
        cli,
        "DetectorHead",
        both,
        tmp_path,
        "--atol",
        "boxes=1",
        "--rtol",
        "scores=0.5",
        shape="2,16",
    )
    assert relaxed.code == 0, relaxed.out


def test_a_tolerance_for_an_output_the_model_lacks_is_a_user_error(cli, detector, tmp_path):
    _, path = detector
    result, _ = _verify(cli, "DetectorHead", path, tmp_path, "--atol", "box=1", shape="2,16")
    assert result.code == 2
    assert result.err.startswith("inspector: error: --atol box=...: ")
    assert "did you mean boxes" in result.err and len(result.err.splitlines()) == 1
    assert not (tmp_path / "report.json").exists()


def test_python_verify_takes_tolerances_per_output(detector, tmp_path):
    loaded, path = detector
    off = tamper(path, tmp_path / "boxes_off.onnx", "boxes.bias", shift_boxes)
    assert not inspector.verify(loaded, onnx=off, seeds=1)
    assert inspector.verify(loaded, onnx=off, seeds=1, atol={"boxes": 1.0})


# --- root cause and repro -----------------------------------------------------------------------


BLOCK_TORCH = """
import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked: the repro must run without PyTorch")
        return None


sys.meta_path.insert(0, NoTorch())
from inspector.cli import main

code = main(["verify", sys.argv[1], "--data", sys.argv[2]])
assert "torch" not in sys.modules
sys.exit(code)
"""


def _verify_without_torch(folder):
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, str(folder / "model.onnx"), str(folder)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "initializer, root, root_type, own_op",
    [
        ("stages.1.0.weight", "stages.1.0", "Conv2d", "Conv"),
        ("stages.2.gain", "stages.2", "Gained", "Mul"),
    ],
    ids=["a deep conv", "a parent's own code"],
)
def test_localize_names_the_root_cause_and_repro_fails_without_torch(
    cli, exported, tmp_path, initializer, root, root_type, own_op
):
    _, path = exported("DeepNet")
    bad = tamper(path, tmp_path / "broken.onnx", initializer, nudge)
    repro = tmp_path / "repro"
    result, data = _verify(cli, "DeepNet", bad, tmp_path, "--localize", "--repro", repro)
    assert result.code == 1, result.out + result.err
    assert f"root cause: module {root} ({root_type})" in result.out
    cause = data["first_divergence"]
    assert (cause["layer"], cause["type"], cause["inputs_agree"]) == (root, root_type, True)
    assert cause["onnx_nodes"][0]["op_type"] == own_op  # its own node first
    assert cause["mismatched"] > 0 and cause["worst"] is not None
    diverging = data["intermediates"]["diverging"]
    assert root in diverging and diverging[0] != "stem.0"  # not the first layer
    if root == "stages.2":  # the first module to diverge is not the root cause
        assert diverging[0] == "stages.2.after.0"

    assert data["repro"] == str(repro)
    assert sorted(p.relative_to(repro).as_posix() for p in repro.rglob("*")) == [
        "model.onnx",
        "test_data_set_0",
        "test_data_set_0/input_0.pb",
        "test_data_set_0/output_0.pb",
    ]
    alone = _verify_without_torch(repro)
    assert alone.returncode == 1, alone.stdout + alone.stderr
    assert alone.stdout.startswith("FAILED | model.onnx: 1 of 1 run(s) mismatch")
    assert cause["onnx_value"] in alone.stdout  # the module's output value, by its ONNX name


def test_the_repro_of_a_faithful_module_passes_without_torch(cli, exported, tmp_path):
    """The repro folder holds the module's real values: the unbroken module matches them."""
    import onnx

    _, path = exported("DeepNet")
    bad = tamper(path, tmp_path / "broken.onnx", "stages.1.0.weight", nudge)
    repro = tmp_path / "repro"
    result, _ = _verify(cli, "DeepNet", bad, tmp_path, "--localize", "--repro", repro)
    assert result.code == 1
    # Put the right weight back into the cut-out module: it must now agree with PyTorch's values.
    model = onnx.load(str(repro / "model.onnx"))
    right = {init.name: init for init in onnx.load(str(path)).graph.initializer}
    for init in model.graph.initializer:
        init.CopyFrom(right[init.name])
    onnx.save(model, str(repro / "model.onnx"))
    fixed = _verify_without_torch(repro)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_no_repro_when_nothing_diverges(cli, exported, tmp_path):
    _, path = exported("DeepNet")
    repro = tmp_path / "repro"
    result, data = _verify(cli, "DeepNet", path, tmp_path, "--localize", "--repro", repro)
    assert result.code == 0, result.out
    assert data["first_divergence"] is None and data["repro"] is None
    assert not repro.exists()


def test_repro_needs_localize_and_a_free_folder(cli, tmp_path):
    alone = cli("verify", "exercise_model", "--repro", tmp_path / "r")
    assert alone.code == 2 and "--repro needs --localize" in alone.err
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    taken = cli("verify", "no_such_model", "--localize", "--repro", used)
    assert taken.code == 2 and "already exists" in taken.err
    assert [p.name for p in used.iterdir()] == ["keep.txt"]


def test_a_zero_head_file_without_module_names_warns_that_its_pass_proves_little(
    exported, tmp_path
):
    import onnx

    loaded, path = exported("ZeroHeadNet")
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]  # as a file from another exporter would be
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    report = inspector.verify(loaded, onnx=bare, seeds=1)
    assert report and report.intermediates is None
    (warning,) = report.warnings
    assert "cannot tell a right export from a wrong one" in warning
    assert "proves little" in warning and "records no PyTorch module names" in warning
    # A model with no submodules: its output is all there is to compare.
    zero = torch.nn.Linear(4, 3)
    torch.nn.init.zeros_(zero.weight)
    torch.nn.init.zeros_(zero.bias)
    lone = inspector.verify(zero, torch.randn(2, 4), seeds=1)
    assert lone and "proves little" in lone.warnings[-1]


def test_an_output_that_ignores_its_inputs_is_blind_too():
    """A head with zero weights and a bias outputs the bias whatever comes in: not constant, not
    small, and still unable to tell a right export from a wrong one."""
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        head = torch.nn.Linear(8, 4)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.uniform_(head.bias, 1.0, 2.0, generator=generator)
    net = torch.nn.Sequential(body, head).eval()
    x = torch.randn(2, 3, 8, 8, generator=generator)
    report = inspector.verify(net, x, seeds=2, batch_sizes=[2])
    assert report, report
    checked = report.intermediates
    assert checked is not None and checked.decisive
    assert "it is the same whatever the inputs" in checked.reason
    assert checked.compared >= 4
