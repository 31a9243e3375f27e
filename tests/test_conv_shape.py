"""inspector conv-shape: the lecture's output-size formula, computed and solved, checked against torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import inspector
from inspector.convshape import conv_output_size, solve_conv
from inspector.errors import InspectorError


def torch_output(size, kernel, stride=1, padding=0, dilation=1):
    """The (H, W) that a real convolution produces, or None when torch refuses the arguments."""
    pairs = [
        v if isinstance(v, tuple) else (v, v) for v in (size, kernel, stride, padding, dilation)
    ]
    (h, w), (kh, kw), stride, padding, dilation = pairs
    conv = torch.nn.Conv2d(1, 1, (kh, kw), stride=stride, padding=padding, dilation=dilation)
    try:
        with torch.no_grad():
            out = conv(torch.zeros(1, 1, h, w))
    except RuntimeError:
        return None
    return tuple(out.shape[2:])


# ---- compute: the lecture's numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        ((256, 3), 254),  # conv.py: Conv2d(3, 64, kernel_size=3) on 256x256
        ((256, 5, 2, 2), 128),  # conv.py: Conv2d(3, 128, kernel_size=5, stride=2, padding=2)
        ((128, 3, 2, 1), 64),  # exercise 1, problem 2
        ((128, 5, 8, 2), 16),  # exercise 3: the 16x16 map the Linear layer flattens
        ((128, 3, 1, 1), 128),  # sample.py: padding 1 keeps the size
    ],
)
def test_compute_gives_the_lectures_sizes(args, expected):
    assert conv_output_size(*args).output == expected
    assert torch_output(*args) == (expected, expected)


def test_compute_text_shows_both_formulas_and_the_dropped_rows(cli):
    result = cli("conv-shape", "--input", "128", "--kernel", "5", "--stride", "8", "--padding", "2")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "output: 16"
    assert "floor((128 + 2*2 - 1*(5-1) - 1) / 8) + 1 = 16" in lines[1]
    assert "(128 + 2*2 - 5) / 8 + 1 = 16.875" in lines[2]
    assert "not exact" in lines[3] and "7 rows and 7 columns" in lines[3]


def test_an_exact_division_is_not_called_inexact(cli):
    result = cli("conv-shape", "--input", "256", "--kernel", "3")
    assert result.code == 0, result.err
    assert "(256 + 2*0 - 3) / 1 + 1 = 254" in result.out
    assert "not exact" not in result.out


def test_dilation_shows_the_dilated_kernel_in_the_lecture_formula():
    shape = conv_output_size(10, 3, dilation=2)
    assert shape.output == 6 == torch_output(10, 3, dilation=2)[0]
    assert "(10 + 2*0 - 5) / 1 + 1 = 6" in str(shape)


def test_height_width_pairs(cli):
    result = cli("conv-shape", "--input", "128,96", "--kernel", "3", "--stride", "2",
                 "--padding", "1", "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    assert result.json() == {"output": [64, 48]}
    text = cli("conv-shape", "--input", "128,96", "--kernel", "3,5").out
    assert text.splitlines()[0] == "output: 126x92 (height x width)"
    assert torch_output((128, 96), (3, 5)) == (126, 92)


def test_compute_json_is_just_the_output(cli):
    result = cli("conv-shape", "--input", "256", "--kernel", "3", "--format", "json")
    assert result.json() == {"output": 254}


# ---- solve: exercise 1 ----------------------------------------------------------------------

EXERCISE_1 = [
    # (kernel, wanted output) -> the simplest (stride, padding); exercise1.py uses exactly these
    ((3, 126), (1, 0)),
    ((3, 64), (2, 1)),
    ((5, 126), (1, 1)),
    ((5, 64), (2, 2)),
]


@pytest.mark.parametrize("question, answer", EXERCISE_1)
def test_solve_answers_exercise_1(cli, question, answer):
    kernel, wanted = question
    result = cli("conv-shape", "--input", 128, "--kernel", kernel, "--output", wanted,
                 "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    solutions = result.json()["solutions"]
    assert solutions[0] == {"stride": answer[0], "padding": answer[1], "dilation": 1}
    for solution in solutions:
        assert set(solution) == {"stride", "padding", "dilation"}
        assert torch_output(128, kernel, solution["stride"], solution["padding"]) == (
            wanted,
            wanted,
        )


def test_solve_text_names_the_answer_and_the_order(cli):
    result = cli("conv-shape", "--input", "128", "--kernel", "3", "--output", "64")
    assert result.code == 0, result.err
    assert "simplest first (smallest stride, then padding)" in result.out
    assert "stride 2, padding 1:  (128 + 2*1 - 3) / 2 + 1 = 64.5 -> 64" in result.out


def test_solve_with_a_fixed_stride_searches_only_the_padding():
    # exercise 3 fixes kernel 5 and stride 8; paddings 0, 1 and 2 all give a 16x16 map
    found = solve_conv(128, 5, output=16, stride=8)
    assert [(s.stride, s.padding) for s in found] == [(8, 0), (8, 1), (8, 2)]
    assert found.to_dict()["total"] == 3


def test_solve_lists_the_simplest_and_counts_the_rest(cli):
    result = cli(
        "conv-shape", "--input", "128", "--kernel", "3", "--output", "2", "--format", "json"
    )
    data = result.json()
    assert data["total"] == 192 > len(data["solutions"]) == 20
    text = cli("conv-shape", "--input", "128", "--kernel", "3", "--output", "2").out
    assert "... and 172 more" in text


def test_solve_pairs_gives_pairs():
    found = solve_conv((128, 96), 3, output=(64, 48))
    assert [s.to_dict() for s in found] == [
        {"stride": [2, 2], "padding": [1, 1], "dilation": [1, 1]}
    ]


def test_the_python_api_names():
    assert inspector.conv_output_size is conv_output_size
    assert inspector.solve_conv is solve_conv


# ---- user errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--input", "4", "--kernel", "7"], "larger than the padded input"),
        (["--input", "4", "--kernel", "3", "--dilation", "3"], "larger than the padded input"),
        (["--input", "0", "--kernel", "3"], "input must be a positive integer"),
        (["--input", "128", "--kernel", "0"], "kernel must be a positive integer"),
        (["--input", "128", "--kernel", "3", "--stride", "0"], "stride must be a positive"),
        (["--input", "128", "--kernel", "3", "--dilation", "-1"], "dilation must be a positive"),
        (["--input", "128", "--kernel", "3", "--padding", "-1"], "padding must be an integer >= 0"),
        (["--input", "12a", "--kernel", "3"], "not an integer or an H,W pair"),
        (["--input", "1.5", "--kernel", "3"], "not an integer or an H,W pair"),
        (["--input", "1,2,3", "--kernel", "3"], "H,W pair"),
        (["--input", "128", "--kernel", "3", "--output", "0"], "output must be a positive"),
        (["--input", "128", "--kernel", "3", "--output", "100"], "no stride and padding give"),
        (["--input", "128", "--kernel", "3", "--output", "500"], "no stride and padding give"),
        (["--input", "128,96", "--kernel", "3", "--output", "64,200"], "width: no stride"),
        (["--input", "128", "--kernel"], "expected one argument"),
    ],
)
def test_user_errors_are_one_line_exit_2(cli, argv, reason):
    result = cli("conv-shape", *argv)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("inspector: error: ")
    assert len(result.err.strip().splitlines()) == 1
    assert reason in result.err


def test_unreachable_names_the_nearest_real_outputs():
    with pytest.raises(InspectorError) as error:
        solve_conv(128, 3, output=100)
    message = str(error.value)
    assert "126 (stride 1, padding 0)" in message and "65 (stride 2, padding 2)" in message
    assert torch_output(128, 3, 1, 0) == (126, 126) and torch_output(128, 3, 2, 2) == (65, 65)


def test_conv_shape_does_not_import_torch():
    code = (
        "import sys\n"
        "from inspector.cli import main\n"
        "assert main(['conv-shape', '--input', '128', '--kernel', '3', '--output', '64']) == 0\n"
        "assert main(['conv-shape', '--input', '128', '--kernel', '3']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---- properties: agreement with a real nn.Conv2d --------------------------------------------

sizes = st.integers(1, 24)
kernels = st.integers(1, 6)
strides = st.integers(1, 5)
paddings = st.integers(0, 4)
dilations = st.integers(1, 3)


def maybe_pair(values):
    return st.one_of(values, st.tuples(values, values))


@settings(max_examples=150, deadline=None)
@given(maybe_pair(sizes), maybe_pair(kernels), maybe_pair(strides), maybe_pair(paddings),
       maybe_pair(dilations))  # fmt: skip
def test_compute_agrees_with_nn_conv2d(size, kernel, stride, padding, dilation):
    expected = torch_output(size, kernel, stride, padding, dilation)
    if expected is None:  # torch refuses exactly the settings we call user errors
        with pytest.raises(InspectorError, match="larger than the padded input"):
            conv_output_size(size, kernel, stride, padding, dilation)
        return
    output = conv_output_size(size, kernel, stride, padding, dilation).output
    assert (tuple(output) if isinstance(output, list) else (output, output)) == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20), st.integers(1, 5), dilations, st.integers(1, 24))
def test_solve_finds_exactly_the_settings_that_give_the_target(size, kernel, dilation, target):
    span = dilation * (kernel - 1) + 1
    # brute force over the documented bounds: padding 0..D(K-1), stride 1..I+2P-D(K-1)
    by_torch = []
    for padding in range(span):
        for stride in range(1, size + 2 * padding - span + 2):
            if torch_output(size, kernel, stride, padding, dilation) == (target, target):
                by_torch.append((stride, padding))
    try:
        found = solve_conv(size, kernel, output=target, dilation=dilation, limit=None)
    except InspectorError as error:
        assert by_torch == [], f"solve said unreachable ({error}) but torch reaches {by_torch}"
        return
    pairs = [(s.stride, s.padding) for s in found]
    assert pairs == sorted(by_torch)  # every one of them, simplest first
    assert found.total == len(pairs)
    assert all(s.dilation == dilation for s in found)


@settings(max_examples=30, deadline=None)
@given(
    st.tuples(sizes, sizes),
    st.tuples(kernels, kernels),
    st.tuples(st.integers(1, 8), st.integers(1, 8)),
)
def test_every_pair_solution_gives_the_target(size, kernel, target):
    try:
        found = solve_conv(size, kernel, output=target)
    except InspectorError:
        return
    assert 1 <= len(found) <= found.total
    for setting in found:
        stride, padding = tuple(setting.stride), tuple(setting.padding)
        assert torch_output(size, kernel, stride, padding) == target


def test_the_module_docstring_examples_hold():
    import doctest

    import inspector.convshape

    failures, tried = doctest.testmod(inspector.convshape)
    assert (tried, failures) == (2, 0)  # the module docstring's two examples


def test_the_readme_shows_what_conv_shape_prints(cli):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n\$ inspector (conv-shape [^\n]*)\n(.*?)```", readme, re.S)
    assert len(blocks) == 2  # compute, and solve
    for command, shown in blocks:
        result = cli(*command.split())
        assert result.code == 0, result.err
        assert result.out == shown, command


@pytest.mark.parametrize("name", ["conv_bn_relu", "exercise_model"])
def test_summary_shows_the_shape_conv_shape_computes(cli, name):
    from inspector.models import create_model

    convs = {n: m for n, m in create_model(name).named_modules() if isinstance(m, torch.nn.Conv2d)}
    layers = cli("summary", name, "--format", "json").json()["layers"]
    shown = [layer for layer in layers if layer["type"] == "Conv2d"]
    assert [layer["name"] for layer in shown] == list(convs)
    for layer in shown:
        conv = convs[layer["name"]]
        size = tuple(layer["input_shape"][2:])
        computed = conv_output_size(
            size, conv.kernel_size, conv.stride, conv.padding, conv.dilation
        )
        assert computed.output == layer["output_shape"][2:]
    table = cli("summary", name).out
    for layer in shown:
        assert str(layer["output_shape"]) in table
