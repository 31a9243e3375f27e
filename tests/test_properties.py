"""Properties that must hold for any input, checked on random ones (hypothesis).

- Any argument list: main() returns 0, 1 or 2, never prints a traceback, never reports an internal
  error (that would be a bug that escaped as exit 1), and a refusal is exactly one line.
- Any bytes given as an ONNX file or as a checkpoint: exit 2, one line.

The argument lists are built from the real commands and options plus junk, but never run a slow
command on a real model (export, verify, view, render, bench and check-all only ever see a MODEL
that does not load), and never name a module that could do harm when called (os:system etc.).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest
from conftest import split_steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.cli import main

FAST_MODELS = ["relu", "linear", "my_model", "conv_bn_relu", "conv"]
SLOW_COMMANDS = ["export", "verify", "view", "render", "bench"]
OPTIONS = [
    "--input-shape",
    "--kwargs",
    "-k",
    "--kwarg",
    "--checkpoint",
    "--depth",
    "--format",
    "-o",
    "--output",
    "--opset",
    "--graph",
    "--exporter",
    "--static-batch",
    "--onnx",
    "--data",
    "--atol",
    "--rtol",
    "--seeds",
    "--batch-sizes",
    "--report",
    "--save-data",
    "--localize",
    "--port",
    "--no-browser",
    "--threads",
    "--runs",
    "--warmup",
    "--shard",
    "--input",
    "--kernel",
    "--stride",
    "--padding",
    "--dilation",
    "--help",
    "--version",
    "-h",
    "--bogus",
]
VALUES = [
    "",
    "-",
    "--",
    "0",
    "1",
    "-1",
    "3",
    "1,3,8,8",
    "2,3",
    "1,1,3,3",
    "1x3x8x8",
    "0,3",
    "1,,2",
    "99999999999,99999999999",
    "1e999",
    "nan",
    "inf",
    "-0",
    "text",
    "json",
    "markdown",
    "dynamo",
    "torchscript",
    "authored",
    "optimized",
    "1/2",
    "0/0",
    "3/2",
    "{}",
    '{"arg1": 1}',
    "[1]",
    "null",
    "arg1=5",
    "=",
    "a=b=c",
    "8,8",
    "3,3",
    "missing.pt",
    "missing.onnx",
    "folder/",
    "nope.py:Net",
    "models.lecture:ExerciseModel",
    "models.lecture:nothing",
    "no_such.module:X",
    ":",
    "a:",
    ":b",
    ".",
    "..",
    "/",
    "~",
    "モデル",
    "💥",
    "--",
]
# What a real argv can hold: no NUL (the OS cannot pass one) and no lone surrogates.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
TOKEN = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), TEXT)


@st.composite
def argument_lists(draw):
    command = draw(
        st.sampled_from(
            ["list", "summary", "conv-shape", *SLOW_COMMANDS, "check-all", "nonsense", ""]
        )
    )
    rest = draw(st.lists(TOKEN, max_size=8))
    if command in SLOW_COMMANDS:
        # Whatever else is drawn, the MODEL never loads, so nothing slow or blocking starts.
        model = draw(st.sampled_from(["no_such_model", "missing.py:Net", "", "-"]))
        return [command, model, *rest]
    if command == "check-all":  # it would check every model: only its usage errors and help
        return [
            command,
            *draw(
                st.sampled_from(
                    [
                        ["--shard", "x"],
                        ["--shard", "0/2"],
                        ["--shard", "3/2"],
                        ["--bogus"],
                        ["--help"],
                    ]
                )
            ),
        ]
    if command == "summary":
        model = draw(st.sampled_from([*FAST_MODELS, *VALUES]))
        return [command, model, *rest]
    return [command, *rest] if command else rest


@contextlib.contextmanager
def _inside(folder):
    back = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(back)


def _outcome(capfd, argv):
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    return code, out, split_steps(err)[0]  # an error is one line after the progress steps


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=argument_lists())
def test_any_argument_list_exits_0_1_or_2_without_a_traceback(capfd, argv):
    with tempfile.TemporaryDirectory() as folder, _inside(folder):
        code, out, err = _outcome(capfd, argv)  # "-o x" or a default output lands in `folder`
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in out + err, argv
    assert "internal error" not in err, (argv, err)
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("inspector: error: "), (argv, err)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(max_size=4096))
def test_any_bytes_as_an_onnx_file_exit_2(capfd, tmp_path, data):
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    code, _, err = _outcome(capfd, ["summary", str(path)])
    assert code == 2, (data[:40], err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: error: "), err
    assert str(path) in lines[0]


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(max_size=4096))
def test_any_bytes_as_a_checkpoint_exit_2(capfd, tmp_path, suffix, data):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(data)
    code, _, err = _outcome(capfd, ["summary", "linear", "--checkpoint", str(path)])
    assert code == 2, (data[:40], err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: error: "), err
    assert Path(path).name in lines[0]
