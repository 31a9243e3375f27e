"""Long work reports its steps on stderr: plain lines off a terminal, a spinner on one, nothing
in the Python API unless asked, and never on --format json's stdout."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import torch

import inspector
from inspector.util.progress import PREFIX, progress_bar, step, steps_shown


def _position(steps: list[str], start: str) -> int:
    return next(i for i, text in enumerate(steps) if text.startswith(start))


def test_verify_prints_its_steps_in_order_and_stdout_stays_json(cli):
    result = cli("verify", "relu", "--no-cache", "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["passed"] is True  # the whole of stdout is the document
    order = [
        "loading relu",
        "exporting relu to ONNX",
        "writing and checking the ONNX file",
        "checking the ONNX file",
        "input set 1 of ",
        "input set 2 of ",
    ]
    positions = [_position(result.steps, start) for start in order]
    assert positions == sorted(positions), result.steps


def test_a_real_process_keeps_stdout_one_document_and_prints_plain_steps_on_stderr():
    done = subprocess.run(
        [sys.executable, "-m", "inspector", "verify", "relu", "--no-cache", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "relu"
    lines = done.stderr.splitlines()
    assert lines[0] == f"{PREFIX}loading relu", done.stderr
    assert "\x1b" not in done.stderr  # no spinner, no colours in a log


def test_the_python_api_is_quiet_unless_asked(capsys):
    module = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Tanh())
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(3))
    assert inspector.verify(module, x)
    assert PREFIX not in capsys.readouterr().err
    with steps_shown():
        assert inspector.verify(module, x)
    err = capsys.readouterr().err
    assert f"{PREFIX}exporting Sequential to ONNX" in err and f"{PREFIX}input set 1 of" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_transient_spinner_not_lines():
    screen = _Terminal()
    with steps_shown(screen), step("exporting a model"), step("checking its file"):
        pass
    drawn = screen.getvalue()
    assert PREFIX not in drawn
    assert "exporting a model" in drawn and "\x1b[" in drawn  # drawn, then erased


def test_a_step_name_cannot_forge_a_line():
    stream = io.StringIO()
    with steps_shown(stream), step("loading evil\ninspector: error: forged"):
        pass
    assert stream.getvalue().count("\n") == 1 and "\\n" in stream.getvalue()


def test_check_all_off_a_terminal_names_each_model_as_a_step(cli):
    result = cli("check-all", "--pattern", "relu", "--no-cache")
    assert result.code == 0, result.err
    assert result.steps == ["exporting and verifying relu"]  # the bar's line; inner steps muted


def test_inside_a_bar_the_steps_of_the_work_are_not_shown():
    stream = io.StringIO()
    with steps_shown(stream), progress_bar(True, 1, "many") as bar:
        bar.describe("item one")
        with step("an inner step"):
            pass
    assert stream.getvalue() == f"{PREFIX}item one\n"
