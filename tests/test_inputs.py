"""Typed, named example inputs: the --input SPEC language, the tensors made from it, and the ways a
model's inputs can be given (flags, an --inputs function, tensors from Python)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inspector.errors import InspectorError
from inspector.export.exporter import make_export_options
from inspector.loading import load_model
from inspector.usermodel.inputs import InputSpec, parse_dynamic_dim, parse_input, spec_of

HERE = Path(__file__).resolve().parent
ANY = HERE / "_any_models.py"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1x3x224x224", InputSpec((1, 3, 224, 224))),
        ("1,3,224,224", InputSpec((1, 3, 224, 224))),
        ("input_ids=2x16:int64:0..1000", InputSpec((2, 16), "int64", "input_ids", 0, 1000)),
        ("mask=2x16:bool", InputSpec((2, 16), "bool", "mask")),
        ("x=4:float16", InputSpec((4,), "float16", "x")),
        ("t=2x2:int8:-5..5", InputSpec((2, 2), "int8", "t", -5, 5)),
    ],
)
def test_input_specs_parse(text, expected):
    assert parse_input(text) == expected
    assert parse_input(str(expected)) == expected  # printing a spec gives it back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2x16:int65", "unknown dtype 'int65'"),
        ("x=2x16:float32:0..5", "a value range applies to integer and bool inputs"),
        ("2-x=2x16", "is not a Python argument name"),
        ("2xfoo", "is not a shape"),
        ("0x3", "positive integer"),
        ("x=2:int64:5..5", "range 5..5 is empty"),
    ],
)
def test_bad_input_specs_name_the_problem(text, message):
    with pytest.raises(InspectorError, match=message):
        parse_input(text)


def test_a_bad_input_spec_names_the_parameter_from_python_and_the_flag_from_the_cli(cli):
    with pytest.raises(
        InspectorError, match=r"^inputs entry '2xfoo': '2xfoo' is not a shape"
    ) as raised:
        load_model("linear", inputs=["2xfoo"])
    assert "--" not in str(raised.value)
    result = cli("summary", "linear", "--input", "2xfoo")
    assert result.code == 2 and result.err.startswith(
        "inspector: error: --input '2xfoo': '2xfoo' is not"
    )


def test_dynamic_dims_parse():
    dim = parse_dynamic_dim("input_ids.1=sequence")
    assert (dim.input, dim.axis, dim.label) == ("input_ids", 1, "sequence")
    for bad in ("input_ids=sequence", "input_ids.x=seq", "input_ids.1=", ".1=seq"):
        with pytest.raises(InspectorError, match="NAME.AXIS=LABEL"):
            parse_dynamic_dim(bad)


def test_a_bad_dynamic_dim_names_the_parameter_from_python_and_the_flag_from_the_cli(cli, tmp_path):
    with pytest.raises(
        InspectorError, match=r"^dynamic_dims entry 'x=seq': write NAME.AXIS=LABEL"
    ) as raised:
        make_export_options(dynamic_dims=["x=seq"])
    assert "--" not in str(raised.value)
    result = cli("export", "linear", "-o", tmp_path / "out.onnx", "--dynamic-dim", "x=seq")
    assert result.code == 2 and result.err.startswith(
        "inspector: error: --dynamic-dim 'x=seq': write NAME.AXIS=LABEL"
    )
    assert not (tmp_path / "out.onnx").exists()


def test_integer_inputs_stay_in_their_range_and_are_seeded():
    spec = parse_input("ids=64x64:int64:3..7")
    first = spec.make(torch.Generator().manual_seed(0))
    again = spec.make(torch.Generator().manual_seed(0))
    other = spec.make(torch.Generator().manual_seed(1))
    assert first.dtype == torch.int64 and first.shape == (64, 64)
    assert int(first.min()) == 3 and int(first.max()) == 6  # 7 excluded, every value drawn
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int32", "uint8", "bool"])
def test_every_dtype_is_made(dtype):
    tensor = parse_input(f"8x8:{dtype}").make(torch.Generator().manual_seed(0))
    assert tensor.dtype == getattr(torch, dtype)
    assert tensor.unique().numel() > 1  # never all ones or all zeros


def test_a_given_tensor_gives_its_dtype_and_value_range():
    ids = torch.tensor([[4, 9], [5, 6]])
    assert spec_of(ids, "ids") == InputSpec((2, 2), "int64", "ids", 4, 10)
    assert spec_of(torch.randn(3)).is_float


def test_keyword_inputs_are_called_by_name_in_forwards_order():
    loaded = load_model(
        f"{ANY}:Structured",
        inputs=["mask=2x5:float32", "ids=2x5:int64:0..100"],
    )
    # ids is forward's first argument, and a name makes a keyword input whatever its place.
    assert [spec.name for spec in loaded.inputs] == ["ids", "mask"]
    inputs = loaded.example_inputs()
    assert inputs.args == () and list(inputs.kwargs) == ["ids", "mask"]
    assert inputs.kwargs["ids"].dtype == torch.int64


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["ids=2x5:int64", "bogus=2x5"], "unexpected keyword argument 'bogus'"),
        (["2x5:int64", "2x5", "2x5", "2x5"], "does not take these inputs"),
        (["ids=2x5:int64", "ids=2x5:int64"], "input 'ids' is given twice"),
    ],
)
def test_inputs_forward_does_not_take_are_refused(inputs, message):
    with pytest.raises(InspectorError, match=message):
        load_model(f"{ANY}:Structured", inputs=inputs)


def test_an_inputs_function_gives_positional_keyword_and_constant_inputs():
    loaded = load_model(f"{ANY}:Structured", inputs_factory=f"{ANY}:structured_inputs")
    given = loaded.first_inputs()
    assert given is loaded.given and given.kwargs["scale"] == 0.5
    ids = given.args[0]
    # the ids' spec: their dtype, and the range of the values the function gave
    low, high = int(ids.min()), int(ids.max()) + 1
    assert [str(spec) for spec in loaded.inputs] == [f"2x5:int64:{low}..{high}", "mask=2x5"]
    assert loaded.constants == {"scale": 0.5}
    # seeded stand-ins of another batch keep the dtype, the range of the ids and the constant
    other = loaded.example_inputs(batch_size=3, seed=1)
    assert other.args[0].shape == (3, 5) and other.args[0].dtype == torch.int64
    assert int(other.args[0].min()) >= 0 and int(other.args[0].max()) < 100
    assert other.kwargs["scale"] == 0.5


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def make():\n    return 'text'\n", "gave a str"),
        ("def make():\n    return (torch.ones(2), 3)\n", "positional input an int is no tensor"),
        ("def make():\n    return {'x': [1, object()]}\n", "keyword input 'x' is a list of 2"),
        # a value is named by its type, never by a repr cut mid-number
        ("def make():\n    return (torch.ones(2), {3.14159265})\n", "positional input a set is"),
        ("def make():\n    raise ValueError('no data here')\n", "no data here"),
        ("make = 3\n", "is a int, not a function"),
    ],
)
def test_a_bad_inputs_function_is_one_line(tmp_path, source, message):
    factory = tmp_path / "factory.py"
    factory.write_text("import torch\n\n" + source)
    with pytest.raises(InspectorError, match=message):
        load_model("linear", inputs_factory=f"{factory}:make")


def test_a_bad_inputs_function_names_the_flag_or_the_parameter(tmp_path, cli):
    factory = tmp_path / "factory.py"
    factory.write_text("make = 3\n")
    with pytest.raises(InspectorError, match="^inputs_factory="):
        load_model("linear", inputs_factory=f"{factory}:make")
    result = cli("summary", "linear", "--inputs", f"{factory}:make")
    assert result.code == 2 and f"--inputs {factory}:make is a int" in result.err


def test_only_one_way_of_giving_inputs(cli):
    result = cli("summary", "linear", "--input", "2x1280", "--input-shape", "2,1280")
    assert result.code == 2 and "one way: --input, --input-shape or --inputs" in result.err
    assert len(result.err.strip().splitlines()) == 1
    with pytest.raises(InspectorError, match="one way: inputs, input_shapes or inputs_factory"):
        load_model("linear", inputs=["2x1280"], input_shapes=[(2, 1280)])


def test_tensors_from_python_keep_their_dtypes():
    ids = torch.randint(0, 100, (2, 5))
    loaded = load_model(f"{ANY}:Structured", inputs={"ids": ids, "mask": torch.ones(2, 5)})
    assert loaded.given.kwargs["ids"] is ids
    assert [spec.dtype for spec in loaded.inputs] == ["int64", "float32"]


def test_a_registry_entry_can_declare_typed_inputs(cli):
    from inspector.models import _registry

    @_registry.register_model(description="an embedding", inputs=["input=3x7:int64:0..50"])
    def _typed_entry_for_test():
        return torch.nn.Embedding(50, 4)

    try:
        loaded = load_model("_typed_entry_for_test")
        assert [str(s) for s in loaded.inputs] == ["input=3x7:int64:0..50"]
        listed = cli("list", "--format", "json").json()["models"]
        [entry] = [m for m in listed if m["name"] == "_typed_entry_for_test"]
        assert entry["inputs"] == ["input=3x7:int64:0..50"]
        assert "input=3x7:int64:0..50" in cli("list").out
        assert cli("summary", "_typed_entry_for_test", "--format", "json").json()[
            "input_dtypes"
        ] == ["int64"]
    finally:
        del _registry._REGISTRY["_typed_entry_for_test"]
