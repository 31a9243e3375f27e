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
