import json
import textwrap

import pytest
import torch

from inspector.errors import InspectorError
from inspector.loading import load_model, parse_kwargs

USER_MODELS = textwrap.dedent(
    """
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=8):
            super().__init__()
            self.fc = nn.Linear(4, width)

        def forward(self, x):
            return self.fc(x)

    def make_net(width=4):
        return Net(width=width)

    def not_a_model():
        return 42

    NUMBER = 3
    """
)


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_models.py"
    path.write_text(USER_MODELS)
    return path


def test_class_in_a_file(user_file):
    loaded = load_model(f"{user_file}:Net", input_shapes=[(2, 4)])
    assert loaded.module.fc.out_features == 8
    assert not loaded.module.training
    assert loaded.name == "Net"


def test_factory_function_with_kwargs(user_file):
    loaded = load_model(f"{user_file}:make_net", input_shapes=[(2, 4)], kwargs={"width": 6})
    assert loaded.module.fc.out_features == 6


def test_package_module_attr():
    loaded = load_model("models.lecture:ConvBNReLU", input_shapes=[(1, 3, 8, 8)])
    assert type(loaded.module).__name__ == "ConvBNReLU"


def test_a_module_built_in_python_is_taken_as_it_is():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)).train()
    loaded = load_model(model, inputs=["3x5:int64:0..10"])
    assert loaded.module is model and model.training and loaded.spec == "Sequential"
    ids = loaded.example_inputs().args[0]
    assert ids.dtype == torch.int64 and ids.shape == (3, 5)
    with pytest.raises(InspectorError, match="takes no constructor arguments"):
        load_model(model, inputs=["3x5:int64"], kwargs={"width": 2})
    with pytest.raises(InspectorError, match="a MODEL spec .* or an nn.Module; got int"):
        load_model(42)


def test_registry_kwargs_reach_the_builder():
    assert load_model("my_model", kwargs={"arg1": 5, "arg2": "x"}).module.arg1 == 5


def test_registry_example_shape_is_the_default():
    assert load_model("exercise_model").input_shapes == [(32, 3, 128, 128)]


def test_example_inputs_take_a_batch_size_and_are_seeded():
    loaded = load_model("exercise_model")
    (a,) = loaded.example_inputs(batch_size=2, seed=5).args
    (b,) = loaded.example_inputs(batch_size=2, seed=5).args
    (c,) = loaded.example_inputs(batch_size=2, seed=6).args
    assert a.shape == (2, 3, 128, 128)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    ("text", "pairs", "expected"),
    [
        ('{"arg1": 1}', [], {"arg1": 1}),
        (None, ["arg1=2", "arg2=tus"], {"arg1": 2, "arg2": "tus"}),
        ('{"a": 1}', ["a=[1, 2]"], {"a": [1, 2]}),
        (None, ["flag=true"], {"flag": True}),
    ],
)
def test_parse_kwargs(text, pairs, expected):
    assert parse_kwargs(text, pairs) == expected


@pytest.mark.parametrize(
    ("spec", "kwargs", "shapes", "message"),
    [
        ("exercise_modle", {}, None, "did you mean exercise_model"),
        ("{file}:Missing", {}, [(1, 4)], "has no attribute 'Missing'"),
        ("{file}:NUMBER", {}, [(1, 4)], "is a int, not an nn.Module"),
        ("{file}:not_a_model", {}, [(1, 4)], "returned a int, not an nn.Module"),
        ("{file}:Net", {"depth": 3}, [(1, 4)], "bad constructor arguments"),
        ("{file}:Net", {}, None, "no example input is known; pass inputs="),
        ("no/such/file.py:Net", {}, [(1, 4)], "no such file"),
        ("no_such_package_xyz:Net", {}, [(1, 4)], "cannot import module"),
    ],
)
def test_errors_name_the_problem(user_file, spec, kwargs, shapes, message):
    with pytest.raises(InspectorError, match=message):
        load_model(spec.format(file=user_file), input_shapes=shapes, kwargs=kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [("[1, 2]", "must be a JSON object"), ("{bad", "not valid JSON")],
)
def test_bad_kwargs_json(text, message):
    with pytest.raises(InspectorError, match=message):
        parse_kwargs(text, [])


def test_a_missing_input_names_the_flag_on_the_command_line(user_file, cli):
    result = cli("export", f"{user_file}:Net", "-o", str(user_file.parent / "net.onnx"))
    assert result.code == 2
    assert "no example input is known; pass --input" in result.err
    assert "inputs=" not in result.err


def test_a_file_that_raises_on_import(tmp_path, cli):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom at import')\n")
    result = cli("summary", f"{path}:Net", "--input-shape", "1,4")
    assert result.code == 2
    assert "boom at import" in result.err
    assert "Traceback" not in result.err


def test_cli_summary_of_a_user_file(user_file, cli):
    result = cli(
        "summary", f"{user_file}:Net", "--input-shape", "2,4", "-k", "width=3", "--format", "json"
    )
    assert result.code == 0, result.err
    assert result.json()["total_params"] == 4 * 3 + 3


def test_a_user_model_has_the_same_weights_on_every_load(user_file):
    first = load_model(f"{user_file}:Net", input_shapes=[(2, 4)]).module.fc.weight
    second = load_model(f"{user_file}:Net", input_shapes=[(2, 4)]).module.fc.weight
    assert torch.equal(first, second)


def test_package_module_attr_resolves_from_the_current_folder(tmp_path):
    """The installed `inspector` command in a folder with a package of its own (named `models`,
    as the lecture's are): found there, as `python -m` finds it, not reported as missing."""
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).with_name("inspector")
    if not command.is_file():
        pytest.skip(f"no installed inspector command beside {sys.executable}")
    package = tmp_path / "models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(USER_MODELS)
    done = subprocess.run(
        [str(command), "summary", "models.nets:make_net", "--input-shape", "2,4", "-k", "width=5"]
        + ["--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 4 * 5 + 5


def test_a_file_without_attr_names_its_models(tmp_path, cli):
    """`file.py` alone: one line naming the file's nn.Module classes and factories, found without
    running the file (its last line would end the process)."""
    path = tmp_path / "my_net.py"
    path.write_text(
        USER_MODELS
        + textwrap.dedent(
            """
            class Deeper(Net):
                pass

            class Helper:
                pass

            def make_head() -> nn.Module:
                return build_it()

            raise SystemExit("never run")
            """
        )
    )
    result = cli("summary", path, "--input-shape", "2,4")
    assert result.code == 2 and len(result.err.splitlines()) == 1, result.err
    assert result.err.strip().endswith(
        "my_net.py names no model: add :ATTR, one of Net, Deeper, make_net, make_head"
    )
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert "names no model: add :ATTR" in cli("summary", empty).err
    assert "no such file" in cli("summary", tmp_path / "absent.py").err


def _flags_and_state(module):
    return (
        [sub.training for sub in module.modules()],
        [p.requires_grad for p in module.parameters()],
        {k: v.clone() for k, v in module.state_dict().items()},
    )


def test_the_callers_module_leaves_inspector_as_it_came_in(tmp_path):
    """load_model, summarize, export and verify run the model in eval mode, then give every layer
    its own training flag back; nothing touches the weights, the BatchNorm statistics or the
    requires_grad flags."""
    import inspector

    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 2),
    ).train()
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    model[3].eval()  # one layer's own flag inside a training model
    model[0].weight.requires_grad_(False)
    before = _flags_and_state(model)

    loaded = inspector.load_model(model, inputs=["2x3x8x8"])
    inspector.summarize(loaded)
    inspector.export_onnx(loaded, tmp_path / "model.onnx")
    assert inspector.verify(loaded, onnx=tmp_path / "model.onnx", seeds=1)

    after = _flags_and_state(model)
    assert after[:2] == before[:2]
    assert after[2].keys() == before[2].keys()
    assert all(torch.equal(after[2][k], before[2][k]) for k in before[2])


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("verify", lambda inspector: inspector.verify(42)),
        ("benchmark", lambda inspector: inspector.benchmark(42)),
        ("diff", lambda inspector: inspector.diff(42, "relu", run=False)),
    ],
)
def test_every_function_that_takes_a_model_reads_it_the_same_way(name, call):
    """One function (loading.as_loaded) turns a MODEL argument into a LoadedModel for all."""
    import inspector

    with pytest.raises(InspectorError) as raised:
        call(inspector)
    assert str(raised.value) == (
        f"{name}() takes an nn.Module, a LoadedModel or a MODEL spec, not int"
    )
