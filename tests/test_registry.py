import pytest
import torch
from _params import registered_models
from inspector.models import create_model, list_models, register_model

from inspector import models


def test_lecture_models_are_registered():
    expected = {"conv_bn_relu", "exercise_model", "my_model", "conv", "linear", "batchnorm", "relu"}
    assert expected <= set(list_models())


def test_duplicate_names_raise():
    with pytest.raises(ValueError, match="already registered"):

        @register_model(description="again", input_shape=(1,))
        def relu():
            return torch.nn.ReLU()


def test_pattern_filters_names():
    assert list_models("conv*") == ["conv", "conv_bn_relu"]


@pytest.mark.parametrize("name", registered_models())
def test_building_is_deterministic(name):
    first, second = create_model(name), create_model(name)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("name", registered_models())
def test_every_model_runs_on_its_example_shape(name):
    entry = models.get_entry(name)
    model = create_model(name).eval()
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(shape, generator=generator) for shape in entry.input_shapes]
    with torch.inference_mode():
        output = model(*inputs)
    assert output.shape[0] == entry.input_shapes[0][0]


def test_building_does_not_disturb_the_global_seed():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create_model("exercise_model")
    assert torch.equal(torch.rand(3), expected)


def test_exercise_model_gives_the_slides_shape():
    model = models.ExerciseModel().eval()
    x = torch.randn(32, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (32, 64)


def test_my_model_keeps_its_arguments_and_returns_its_input():
    model = create_model("my_model", arg1=7, arg2="x")
    x = torch.randn(2, 3)
    assert (model.arg1, model.arg2) == (7, "x")
    assert torch.equal(model(x), x)


def test_recording_names_what_an_import_registered(monkeypatch):
    monkeypatch.setattr(models._registry, "_REGISTRY", dict(models._registry._REGISTRY))
    with models.recording_registrations() as names:

        @register_model(description="recorded", input_shape=(1, 2))
        def zz_recorded():
            return torch.nn.ReLU()

    assert names == ["zz_recorded"]
    assert "zz_recorded" in list_models()
    register_model(description="imported again", input_shape=(1, 2))(zz_recorded)
    assert models.get_entry("zz_recorded").description == "imported again"
    assert names == ["zz_recorded"]  # the block has ended: nothing more recorded


def test_register_model_is_the_public_api():
    import inspector

    assert inspector.register_model is register_model
    assert "check-all --models" in register_model.__doc__
