"""torch's inductor cache folder ($TMPDIR/torchinductor_<user>, made when torch._dynamo is first
imported) is not left behind by a summary, an export or a verify; a folder the user chose in
TORCHINDUCTOR_CACHE_DIR is theirs and stays. Each run is a fresh process: torch._dynamo is
imported once per process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import _hostile_files as bad
import pytest

from inspector.util.inductor import CACHE_VARIABLE, inductor_cache_removed

# A user's factory that imports torch._dynamo itself (as library code that asks whether it is being
# compiled does): the folder is made in every run, whatever our own code path imports.
DYNAMO_MODEL = """
import torch
from torch import nn

def build():
    import torch._dynamo  # noqa: F401
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU())
"""

# Each in its own process, on a lecture model (a user's factory that imports torch._dynamo while
# load_model builds it makes torch's folder in the user's own code, before any of ours runs).
API_RUNS = {
    "summarize": "inspector.summarize(load_model('exercise_model', meta=True, input_shapes=shapes))",
    "export_onnx": "inspector.export_onnx(load_model('exercise_model', input_shapes=shapes), 'e.onnx')",
    "verify": "assert inspector.verify(load_model('exercise_model', input_shapes=shapes), seeds=1)",
    # The soak's folder: with transformers imported, load_model's pytree registration imports
    # its modeling code, which imports torch._dynamo.
    "load_model": "import transformers\nload_model('relu')",
}


# A fresh process each, some seconds of CPU: make test keeps one of each kind, make test-slow the rest.
_SLOW = pytest.mark.slow


def _env(tmp_path, **extra) -> dict[str, str]:
    env = bad.cli_env(TMPDIR=tmp_path / "tmp", INSPECTOR_CACHE_DIR=tmp_path / "cache", **extra)
    if CACHE_VARIABLE not in extra:
        # torch sets it in a process that imported torch._dynamo, maybe this one: not the user's
        env.pop(CACHE_VARIABLE, None)
    return env


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "net.py").write_text(textwrap.dedent(DYNAMO_MODEL))
    return tmp_path


def _inspector(workdir, *argv, **extra):
    done = subprocess.run(
        [sys.executable, "-m", "inspector", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=_env(workdir, **extra),
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    "argv",
    [
        ["summary", "exercise_model", "--meta", "--input-shape", "2,3,128,128"],
        pytest.param(["summary", "net.py:build", "--input-shape", "3,5"], marks=_SLOW),
        ["export", "net.py:build", "--input-shape", "3,5", "-o", "net.onnx"],
        pytest.param(
            ["verify", "net.py:build", "--input-shape", "3,5", "--seeds", "1", "--no-cache"],
            marks=_SLOW,
        ),
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_a_command_leaves_the_temporary_folder_as_it_found_it(workdir, argv):
    _inspector(workdir, *argv)
    assert list((workdir / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    "call", [c if c == "summarize" else pytest.param(c, marks=_SLOW) for c in sorted(API_RUNS)]
)
def test_the_python_api_leaves_the_temporary_folder_as_it_found_it(workdir, call):
    code = (
        "import inspector\nfrom inspector.loading import load_model\nshapes = [(2, 3, 128, 128)]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code + API_RUNS[call]],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=_env(workdir),
    )
    assert done.returncode == 0, done.stderr
    assert list((workdir / "tmp").iterdir()) == []


def test_the_users_own_inductor_cache_folder_is_kept(workdir):
    mine = workdir / "mine"
    mine.mkdir()
    (mine / "kept").write_text("the user's")
    _inspector(workdir, "summary", "net.py:build", "--input-shape", "3,5", **{CACHE_VARIABLE: mine})
    assert (mine / "kept").read_text() == "the user's"
    assert list((workdir / "tmp").iterdir()) == []


def _isolated(monkeypatch, tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    return folder


def test_the_cache_is_a_folder_of_ours_while_held_and_gone_after(monkeypatch, tmp_path):
    folder = _isolated(monkeypatch, tmp_path)
    with inductor_cache_removed():
        held = os.environ[CACHE_VARIABLE]
        assert os.path.dirname(held) == str(folder)
        # as torch does: its own folders inside, and the variable set to the absolute path
        os.makedirs(os.path.join(held, "dynamo", "x"))
        os.environ[CACHE_VARIABLE] = os.path.abspath(held)
    assert CACHE_VARIABLE not in os.environ
    assert list(folder.iterdir()) == []


def test_a_cache_folder_already_named_is_left_alone(monkeypatch, tmp_path):
    folder = _isolated(monkeypatch, tmp_path)
    theirs = tmp_path / "theirs"
    monkeypatch.setenv(CACHE_VARIABLE, str(theirs))
    with inductor_cache_removed():
        assert os.environ[CACHE_VARIABLE] == str(theirs)
        theirs.mkdir()
    assert os.environ[CACHE_VARIABLE] == str(theirs)
    assert theirs.is_dir()
    assert list(folder.iterdir()) == []
