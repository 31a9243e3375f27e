"""check-all over a user's zoo: --models, --junit-xml, --jobs (worker processes) and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import SimpleNamespace

import _hostile_files as bad
import pytest
from conftest import split_steps

from inspector import models
from inspector.checkall import import_zoo
from inspector.errors import InspectorError

ZOO = textwrap.dedent(
    """\
    import torch
    from torch import nn

    import inspector


    class Tanh(nn.Module):
        def __init__(self, features=8):
            super().__init__()
            self.fc = nn.Linear(features, features)

        def forward(self, x):
            return torch.tanh(self.fc(x))


    class Noisy(nn.Module):
        def forward(self, x):
            return x + torch.rand_like(x)  # onnxruntime's draws never equal PyTorch's


    class Baked(nn.Module):
        def forward(self, x):
            return x.view(4, -1)  # the batch size written into the code


    @inspector.register_model(description="tanh of a linear layer", input_shape=(2, 8))
    def zoo_tanh():
        return Tanh()


    @inspector.register_model(description="a wider one", input_shape=(2, 16))
    def zoo_wide():
        return Tanh(16)


    @inspector.register_model(description="random numbers in forward", input_shape=(2, 8))
    def zoo_noisy():
        return Noisy()


    @inspector.register_model(description="batch baked in", input_shape=(4, 3))
    def zoo_baked():
        return Baked()
    """
)
ZOO_NAMES = ["zoo_baked", "zoo_noisy", "zoo_tanh", "zoo_wide"]
VERDICTS = {"zoo_baked": "ERROR", "zoo_noisy": "FAILED", "zoo_tanh": "PASSED", "zoo_wide": "PASSED"}


@pytest.fixture
def restored_registry():
    """The models a test's zoo registers leave the registry after the test."""
    registry = dict(models._registry._REGISTRY)
    yield
    models._registry._REGISTRY.clear()
    models._registry._REGISTRY.update(registry)


@pytest.fixture
def zoo(tmp_path, restored_registry):
    """zoo.py in a folder of its own."""
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / "zoo.py"
    path.write_text(ZOO)
    return path


def _verdicts(result) -> dict[str, str]:
    return {entry["model"]: entry["verdict"] for entry in result.json()["models"]}


def test_models_checks_exactly_what_the_zoo_registers(cli, zoo):
    result = cli("check-all", "--models", zoo, "--format", "json")
    assert result.code == 1, result.err  # zoo_noisy fails, zoo_baked cannot be exported
    assert [entry["model"] for entry in result.json()["models"]] == ZOO_NAMES
    assert _verdicts(result) == VERDICTS
    # Imported a second time, and in this process: --timeout 0 checks without a worker.
    again = cli("check-all", "--models", zoo, "--pattern", "zoo_t*", "--timeout", "0")
    assert again.code == 0, again.err
    assert again.out.splitlines()[-1] == "PASSED | all 1 model(s) export and verify"


def test_the_ci_examples_zoo_passes(cli, restored_registry):
    zoo = Path(__file__).resolve().parent.parent / "examples" / "ci" / "zoo.py"
    result = cli("check-all", "--models", zoo, "--format", "json", "--timeout", "0")
    assert result.code == 0, result.err
    assert _verdicts(result) == {"tiny_classifier": "PASSED", "token_mixer": "PASSED"}


def test_models_takes_a_package_module(cli, zoo, monkeypatch):
    package = zoo.parent / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    zoo.rename(package / "zoo.py")
    monkeypatch.syspath_prepend(str(zoo.parent))
    result = cli("check-all", "--models", "mypkg.zoo", "--pattern", "zoo_[tw]*", "--format", "json")
    assert result.code == 0, result.err
    assert _verdicts(result) == {"zoo_tanh": "PASSED", "zoo_wide": "PASSED"}
    again = cli("check-all", "--models", "mypkg.zoo", "--pattern", "zoo_w*", "--timeout", "0")
    assert again.code == 0  # cached


def test_a_zoo_that_registers_nothing_or_fails_is_a_user_error(cli, tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("import torch\n")
    result = cli("check-all", "--models", empty)
    assert result.code == 2
    assert result.err.startswith(f"inspector: error: --models {empty} registers no model")
    with pytest.raises(InspectorError, match=r"^zoo='.*empty\.py' registers no model"):
        import_zoo(str(empty))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU here')\n")
    result = cli("check-all", "--models", broken)
    assert result.code == 2 and "RuntimeError: no GPU here" in result.err
    assert len(result.err.splitlines()) == 1
    assert cli("check-all", "--models", "no_such_package.zoo").code == 2


def test_an_empty_shard_of_a_zoo_is_a_user_error(cli, zoo):
    result = cli("check-all", "--models", zoo, "--shard", "5/40")
    assert result.code == 2
    assert "--shard 5/40 is empty: there are only 4 model(s)" in result.err


def test_junit_xml_has_a_testcase_per_model_with_the_diff_table(cli, zoo, tmp_path):
    report = tmp_path / "reports" / "check-all.xml"
    report.parent.mkdir()
    argv = ["--models", zoo, "--junit-xml", report, "--shard", "1/1", "--timeout", "0"]
    result = cli("check-all", *argv)
    assert result.code == 1, result.err
    suites = ElementTree.parse(report).getroot()
    (suite,) = suites.findall("testsuite")
    assert suite.get("name") == "inspector check-all (shard 1/1)"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ZOO_NAMES
    assert all(float(case.get("time")) > 0 for case in cases.values())
    failure = cases["zoo_noisy"].find("failure")
    assert failure.get("message").startswith("FAILED | zoo_noisy: ")
    assert "max abs" in failure.text and "mismatched" in failure.text
    assert failure.text.count("\n") >= 6  # the header, a rule and one row per run
    assert "batch" in cases["zoo_baked"].find("error").get("message")
    assert cases["zoo_tanh"].find("failure") is None and cases["zoo_tanh"].find("error") is None
    assert sorted(p.name for p in report.parent.iterdir()) == ["check-all.xml"]  # no scratch file


def test_junit_xml_to_a_missing_folder_fails_before_any_work(cli, zoo, tmp_path, monkeypatch):
    from inspector import checkall

    monkeypatch.setattr(checkall, "check_model", lambda *a, **k: pytest.fail("checked a model"))
    result = cli("check-all", "--models", zoo, "--junit-xml", tmp_path / "no" / "out.xml")
    assert result.code == 2 and "--junit-xml" in result.err


@pytest.mark.slow
def test_jobs_give_the_same_results_in_the_same_order(cli, zoo, tmp_path):
    one = cli("check-all", "--models", zoo, "--format", "json", "--no-cache")
    two = cli("check-all", "--models", zoo, "--format", "json", "--no-cache", "--jobs", "2")
    assert two.code == one.code == 1, two.err
    assert [e["model"] for e in two.json()["models"]] == ZOO_NAMES
    assert _verdicts(two) == _verdicts(one) == VERDICTS
    for first, second in zip(one.json()["models"], two.json()["models"], strict=True):
        assert (first["params"], first["error"]) == (second["params"], second["error"])
    # A worker names options as the command line does, not as a Python caller would
    assert "--static-batch" in two.json()["models"][0]["error"]


def test_what_models_print_in_workers_stays_out_of_the_json(zoo):
    zoo.write_text(ZOO + "\nprint('imported the zoo')\n")
    argv = ["check-all", "--models", zoo, "--pattern", "zoo_[tw]*", "--jobs", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "inspector", *map(str, argv), "--format", "json"],
        env=bad.cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert _verdicts(SimpleNamespace(json=lambda: json.loads(done.stdout))) == {
        "zoo_tanh": "PASSED",
        "zoo_wide": "PASSED",
    }
    assert done.stderr.count("imported the zoo") == 3  # here and in each worker: on stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.slow
def test_the_progress_bar_follows_the_workers(cli, zoo, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    result = cli("check-all", "--models", zoo, "--pattern", "zoo_[tw]*", "--jobs", "2")
    assert result.code == 0, result.err
    drawn = terminal.getvalue()
    assert "exporting and verifying" in drawn and "zoo_tanh" in drawn and "zoo_wide" in drawn
    assert result.out.splitlines()[-1] == "PASSED | all 2 model(s) export and verify"


CRASHING_ZOO = ZOO + textwrap.dedent(
    """

    @inspector.register_model(description="dies in its worker", input_shape=(2, 8))
    def zoo_crash():
        import multiprocessing, os, signal

        if multiprocessing.parent_process() is not None:  # never in the test's own process
            os.kill(os.getpid(), signal.SIGKILL)
        return Tanh()
    """
)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_model_and_the_rest_still_run(cli, zoo):
    zoo.write_text(CRASHING_ZOO)
    result = cli("check-all", "--models", zoo, "--jobs", "2", "--format", "json")
    assert result.code == 1, result.err
    entries = {entry["model"]: entry for entry in result.json()["models"]}
    assert list(entries) == ["zoo_baked", "zoo_crash", "zoo_noisy", "zoo_tanh", "zoo_wide"]
    assert entries["zoo_crash"]["verdict"] == "ERROR"
    assert "killed by SIGKILL" in entries["zoo_crash"]["error"]
    assert {name: entries[name]["verdict"] for name in VERDICTS} == VERDICTS


# --- Ctrl-C ------------------------------------------------------------------------------------

STARTUP_LIMIT = 180  # seconds: three interpreters importing torch on a loaded 2-core machine


def _processes_with(variable: str, value: str) -> list[int]:
    """Live processes whose environment has variable=value (the command and all it started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"{variable}={value}".encode() in environ and state != "Z":
            found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["parent-only", "whole-group"])
def test_ctrl_c_stops_every_worker_with_130_and_leaves_nothing(tmp_path, group):
    root, tmpdir = tmp_path / "work", tmp_path / "tmp"
    root.mkdir()
    tmpdir.mkdir()
    before = bad.snapshot(root)
    process = subprocess.Popen(
        [sys.executable, "-m", "inspector", "check-all", "--pattern", "mobilenet*", "--jobs", "2"],
        cwd=root,
        env=bad.cli_env(TMPDIR=tmpdir, INSPECTOR_CACHE_DIR=root / "cache", INSPECTOR_RUN=root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    # Work seen running: a worker exports a MobileNetV3 (seconds) in a staging folder.
    deadline = time.monotonic() + STARTUP_LIMIT
    while not any((root / "cache").glob(".inspector-export-*")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the workers never started exporting: {process.communicate()[1]}")
        time.sleep(0.01)
    workers = [pid for pid in _processes_with("INSPECTOR_RUN", str(root)) if pid != process.pid]
    assert len(workers) >= 2
    if group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert split_steps(err)[0].strip().splitlines() == ["inspector: interrupted"]
    assert out == ""
    deadline = time.monotonic() + 60  # multiprocessing's resource tracker exits once it sees EOF
    while _processes_with("INSPECTOR_RUN", str(root)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _processes_with("INSPECTOR_RUN", str(root)) == []
    after = bad.snapshot(root)
    assert {k: v for k, v in after.items() if not k.startswith("cache")} == before
    assert not [k for k in after if ".inspector-export-" in k or k.endswith(".partial")]
    assert list(tmpdir.iterdir()) == []
