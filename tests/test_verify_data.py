"""`inspector verify FILE.onnx --data DIR`: golden model-zoo data, onnxruntime only, no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from _verify_helpers import BACKEND_DATA
from onnx import TensorProto, helper, numpy_helper

from inspector import defaults
from inspector.onnx.testdata import DataSet, read_test_data, write_test_data


def _scale_shift_model(path, scale, shift):
    """y = x * scale + shift, built directly with onnx.helper (opset 18)."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "shift"], ["y"]),
        ],
        "scale_shift",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(shift, "shift")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def golden(tmp_path):
    """A model file and golden data computed with numpy for three random inputs."""
    rng = np.random.default_rng(0)
    scale, shift = (
        rng.standard_normal(4).astype(np.float32),
        rng.standard_normal(4).astype(np.float32),
    )
    model = _scale_shift_model(tmp_path / "scale_shift.onnx", scale, shift)
    sets = []
    for batch in (1, 3, 5):
        x = rng.standard_normal((batch, 4)).astype(np.float32)
        sets.append(DataSet("", [x], [x * scale + shift], ["x"], ["y"]))
    data = write_test_data(tmp_path / "golden", sets)
    return model, data


def test_golden_data_round_trips_through_the_zoo_layout(golden):
    _, data = golden
    names = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.pb"))
    assert names == [
        f"test_data_set_{n}/{kind}_0.pb" for n in range(3) for kind in ("input", "output")
    ]
    first = read_test_data(data)[0]
    assert first.name == "test_data_set_0" and first.input_names == ["x"]
    assert first.inputs[0].shape == (1, 4)


def test_matching_data_passes(cli, golden):
    model, data = golden
    result = cli("verify", model, "--data", data)
    assert result.code == 0, result.err
    assert result.out.startswith("PASSED | scale_shift.onnx")
    assert "test_data_set_2" in result.out


def test_an_altered_output_fails_with_exit_1(cli, golden, tmp_path):
    model, data = golden
    target = data / "test_data_set_1" / "output_0.pb"
    tensor = onnx.load_tensor(str(target))
    values = numpy_helper.to_array(tensor).copy()
    values[2, 1] += 0.01  # far beyond atol + rtol * |value|
    target.write_bytes(numpy_helper.from_array(values, tensor.name).SerializeToString())
    result = cli("verify", model, "--data", data, "--report", tmp_path / "report.json")
    assert result.code == 1
    assert result.out.startswith("FAILED | scale_shift.onnx: 1 of 3 run(s) mismatch")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is False
    assert [run["outputs"][0]["mismatched"] for run in report["runs"]] == [0, 1, 0]


def test_loose_tolerances_accept_what_tight_ones_refuse(cli, golden):
    model, data = golden
    target = data / "test_data_set_0" / "output_0.pb"
    values = numpy_helper.to_array(onnx.load_tensor(str(target))).copy()
    values += 1e-3
    target.write_bytes(numpy_helper.from_array(values, "y").SerializeToString())
    assert cli("verify", model, "--data", data).code == 1
    assert cli("verify", model, "--data", data, "--atol", "2e-3").code == 0


def _tiny_golden(tmp_path, scale, shift, outputs):
    """scale_shift.onnx with golden outputs chosen by the test, for inputs drawn here."""
    tmp_path.mkdir(exist_ok=True)
    model = _scale_shift_model(tmp_path / "tiny.onnx", scale, shift)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    data = write_test_data(tmp_path / "tiny", [DataSet("", [x], [outputs(x)], ["x"], ["y"])])
    return model, data


def test_tiny_outputs_in_golden_data_are_judged_at_their_own_scale(cli, tmp_path):
    """An output of about 1e-9 cannot fail at atol 1e-4; at its own scale a 10% error does."""
    scale, shift = np.full(4, 1e-9, np.float32), np.zeros(4, np.float32)
    right = _tiny_golden(tmp_path / "right", scale, shift, lambda x: x * scale)
    result = cli("verify", right[0], "--data", right[1])
    assert result.code == 0, result.out
    assert "judged at its own scale" in result.out
    wrong = _tiny_golden(tmp_path / "wrong", scale, shift, lambda x: x * scale * 1.1)
    result = cli("verify", wrong[0], "--data", wrong[1], "--report", tmp_path / "r.json")
    assert result.code == 1, result.out
    output = json.loads((tmp_path / "r.json").read_text())["runs"][0]["outputs"][0]
    assert output["judged_at_own_scale"] is True and output["atol"] < 1e-11


def test_constant_golden_outputs_are_flagged(cli, tmp_path):
    scale, shift = np.zeros(4, np.float32), np.zeros(4, np.float32)
    model, data = _tiny_golden(tmp_path, scale, shift, lambda x: np.zeros_like(x))
    result = cli("verify", model, "--data", data, "--format", "json")
    assert result.code == 0
    (warning,) = result.json()["warnings"]
    assert "output 'y' cannot tell a right export from a wrong one (every element is 0)" in warning


def test_golden_tolerances_per_output_and_unknown_names(cli, golden):
    model, data = golden
    target = data / "test_data_set_0" / "output_0.pb"
    values = numpy_helper.to_array(onnx.load_tensor(str(target))).copy()
    values += 1e-3
    target.write_bytes(numpy_helper.from_array(values, "y").SerializeToString())
    assert cli("verify", model, "--data", data, "--atol", "y=2e-3").code == 0
    unknown = cli("verify", model, "--data", data, "--atol", "z=2e-3")
    assert unknown.code == 2 and "has no output 'z'" in unknown.err


def test_the_data_path_never_imports_torch(golden):
    model, data = golden
    code = (
        "import sys\n"
        "from inspector.cli import main\n"
        f"code = main(['verify', {str(model)!r}, '--data', {str(data)!r}])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "PASSED" in result.stdout


def test_model_zoo_data_shipped_with_onnx_verifies(cli):
    case = BACKEND_DATA / "test_Conv2d"
    result = cli("verify", case / "model.onnx", "--data", case)
    assert result.code == 0, result.err
    assert result.out.startswith("PASSED")


def test_a_model_onnxruntime_cannot_run_is_a_user_error(cli):
    case = BACKEND_DATA / "test_AvgPool2d"  # opset 6: onnxruntime has no AveragePool(1) kernel
    result = cli("verify", case / "model.onnx", "--data", case)
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("inspector: error: onnxruntime cannot run model.onnx: ")
    assert "AveragePool" in result.err and "opset 6" in result.err


def test_inputs_that_do_not_fit_the_model_are_a_user_error(cli, golden, tmp_path):
    model, _ = golden
    x = np.zeros((2, 7), dtype=np.float32)
    data = write_test_data(tmp_path / "wrong", [DataSet("", [x], [x])])
    result = cli("verify", model, "--data", data)
    assert result.code == 2
    assert result.err.startswith("inspector: error: onnxruntime failed to run scale_shift.onnx")


@pytest.mark.parametrize("problem", ["missing", "empty", "garbage", "no_output"])
def test_unusable_data_folders_are_user_errors(cli, golden, problem):
    model, data = golden
    if problem == "missing":
        shutil.rmtree(data)
    elif problem == "empty":
        shutil.rmtree(data)
        data.mkdir()
    elif problem == "garbage":
        (data / "test_data_set_0" / "input_0.pb").write_bytes(b"\xff\xfe not a tensor")
    else:
        (data / "test_data_set_2" / "output_0.pb").unlink()
    result = cli("verify", model, "--data", data)
    assert result.code == 2, result.out
    assert result.err.startswith("inspector: error: ")
    assert len(result.err.strip().splitlines()) == 1


def test_an_onnx_file_needs_data_and_data_needs_an_onnx_file(cli, golden):
    model, data = golden
    alone = cli("verify", model)
    assert alone.code == 2 and "--data DIR" in alone.err
    spec = cli("verify", "exercise_model", "--data", data)
    assert spec.code == 2 and "--data checks an ONNX file" in spec.err
    localize = cli("verify", model, "--data", data, "--localize")
    assert localize.code == 2 and "--localize needs a PyTorch MODEL" in localize.err


def test_write_refuses_a_folder_that_already_holds_files(golden):
    _, data = golden
    before = sorted(p.name for p in data.iterdir())
    from inspector.errors import InspectorError

    with pytest.raises(InspectorError, match="already exists"):
        write_test_data(data, [DataSet("", [np.ones(1, np.float32)], [np.ones(1, np.float32)])])
    assert sorted(p.name for p in data.iterdir()) == before
    assert not [p for p in data.parent.iterdir() if p.name.startswith(".golden")]


def test_help_and_usage_errors_of_verify_and_check_all_import_no_backend():
    code = (
        "import sys\n"
        "from inspector.cli import main\n"
        "for argv in (['verify', '--help'], ['check-all', '--help'], ['check-all', '--shard', 'x'],\n"
        "             ['verify', 'a.onnx'], ['verify', 'm', '--atol', '-1']):\n"
        "    try:\n"
        "        assert main(argv) in (0, 2), argv\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, 'a backend was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("summary", ["--checkpoint", "x.pt"]),
        ("summary", ["--input-shape", "1,4"]),
        ("verify", ["--data", "DATA", "--opset", "7"]),
        ("verify", ["--data", "DATA", "--checkpoint", "x.pt"]),
        ("verify", ["--data", "DATA", "--static-batch"]),
        ("verify", ["--data", "DATA", "--seeds", "2"]),
        ("render", ["-o", "OUT", "--kwargs", "{}"]),
        ("render", ["-o", "OUT", "--no-cache"]),
        # given at its default value is given all the same
        ("verify", ["--data", "DATA", "--opset", str(defaults.OPSET)]),
        ("verify", ["--data", "DATA", "--exporter", defaults.EXPORTER]),
        ("verify", ["--data", "DATA", "--graph", defaults.GRAPH]),
        ("verify", ["--data", "DATA", "--precision", defaults.PRECISION]),
        ("verify", ["--data", "DATA", "--seeds", str(defaults.SEEDS)]),
        ("render", ["-o", "OUT", "--graph", defaults.GRAPH]),
    ],
)
def test_an_option_that_does_nothing_for_an_onnx_file_is_exit_2(
    cli, golden, tmp_path, command, extra
):
    """The rule diff already had, in every command: a model or export option given with an
    .onnx file is refused by name rather than silently ignored."""
    model, data = golden
    extra = [{"DATA": str(data), "OUT": str(tmp_path / "out.svg")}.get(arg, arg) for arg in extra]
    result = cli(command, model, *extra)
    flag = next(arg for arg in extra if arg.startswith("-") and arg not in ("--data", "-o"))
    assert result.code == 2
    assert result.err.startswith(f"inspector: error: {flag} ") and result.err.count("\n") == 1
    assert not (tmp_path / "out.svg").exists()


def test_help_still_names_the_defaults_of_the_options_told_apart_from_not_given(cli):
    """Their parser default is None (so that one given at its default is refused where it does
    not apply), and --help names the real default all the same."""
    text = " ".join(cli("verify", "--help").out.split())
    assert f"ONNX opset ({defaults.OPSET})" in text
    assert f"(default: {defaults.GRAPH})" in text
    assert f"torch.onnx exporter (default: {defaults.EXPORTER})" in text
    assert f"(default: {defaults.PRECISION})" in text
    assert f"random inputs per batch size ({defaults.SEEDS})" in text


@pytest.mark.parametrize("problem", ["missing", "empty", "gap"])
def test_a_bad_data_folder_names_the_parameter_from_python_and_the_flag_from_the_cli(
    cli, golden, problem
):
    """The folder is read in the child process that runs onnxruntime: it names the option as its
    caller did all the same."""
    from inspector.errors import InspectorError
    from inspector.onnx.golden import verify_data

    model, data = golden
    if problem == "missing":
        shutil.rmtree(data)
    elif problem == "empty":
        shutil.rmtree(data)
        data.mkdir()
    else:
        shutil.rmtree(data / "test_data_set_1")
    with pytest.raises(InspectorError) as raised:
        verify_data(model, data)
    assert str(raised.value).startswith(f"data_dir={str(data)!r}")
    assert "--" not in str(raised.value)
    result = cli("verify", model, "--data", data)
    assert result.code == 2 and result.err.startswith(f"inspector: error: --data {data}")
