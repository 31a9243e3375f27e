import subprocess
import sys

import pytest


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from inspector.cli import main\n"
        "for argv in (['--help'], ['summary', '--help'], ['export', '--bogus']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'onnx' not in sys.modules, 'onnx was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["summary"],
        ["nonsense"],
        ["summary", "relu", "--depth", "0"],
        ["summary", "relu", "--input-shape", "1,x"],
        [],
    ],
)
def test_usage_errors_are_one_line_exit_2(cli, argv):
    result = cli(*argv)
    assert result.code == 2
    assert result.err.startswith("inspector: error: ")
    assert len(result.err.strip().splitlines()) == 1


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "inspector", "list"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "exercise_model" in result.stdout


def test_debug_shows_the_traceback(cli):
    result = cli("summary", "no_such_model", "--debug")
    assert result.code == 2
    assert "Traceback" in result.err
    assert result.err.strip().splitlines()[-1].startswith("inspector: error: unknown model")


def test_a_bug_exits_3_not_1_so_ci_tells_a_crash_from_a_mismatch(cli, monkeypatch):
    from inspector.cli import summary

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(summary, "run", broken)
    result = cli("summary", "relu")
    assert result.code == 3
    assert result.err.strip() == (
        "inspector: internal error: ZeroDivisionError: a bug (run with --debug for the traceback)"
    )


def test_debug_shows_the_root_cause_of_a_user_error(cli, tmp_path):
    """InspectorError is raised `from` the library's exception: --debug shows where it began."""
    broken = tmp_path / "net.py"
    broken.write_text("import torch\n\ndef Net():\n    return {}['missing']\n")
    result = cli("summary", f"{broken}:Net", "--input", "2x3", "--debug")
    assert result.code == 2
    assert "KeyError: 'missing'" in result.err  # the root cause's own frame
    assert "The above exception was the direct cause" in result.err


PRINTS = """\
import torch


class Chatty(torch.nn.Linear):
    def __init__(self):
        super().__init__(3, 2)

    def forward(self, x):
        print("hello from forward")
        return super().forward(x)
"""


@pytest.mark.parametrize("command", ["summary", "export", "verify"])
def test_a_model_that_prints_leaves_json_on_stdout_clean(cli, tmp_path, command):
    model = tmp_path / "chatty.py"
    model.write_text(PRINTS)
    argv = [command, f"{model}:Chatty", "--input", "2x3", "--format", "json"]
    if command == "export":
        argv += ["-o", tmp_path / "chatty.onnx"]
    if command == "verify":
        argv += ["--seeds", "1", "--no-cache"]
    result = cli(*argv)
    assert result.code == 0, result.err
    assert isinstance(result.json(), dict)  # stdout is exactly one JSON document
    if command != "export":  # the exporter traces forward with its own output hidden
        assert "hello from forward" in result.err


@pytest.mark.parametrize(
    "command",
    ["list", "summary", "export", "verify", "view", "render", "bench", "check-all", "diff"],
)
def test_every_command_takes_format_json(command):
    from inspector.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    formats = next(a for a in sub._actions if a.dest == "format")
    assert "json" in formats.choices and formats.default == "text"
