"""The toolkit usage examples run, and the CI workflow's commands are ones the CLI accepts."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.cli import build_parser

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _workflow_commands() -> list[list[str]]:
    text = (EXAMPLES / "ci" / "verify.yml").read_text()
    text = text.replace("${{ matrix.shard }}", "1")
    lines = re.findall(r"^\s*(?:run:\s*)?(inspector\s.+?)(?:\s*[>|].*)?$", text, re.MULTILINE)
    return [shlex.split(line)[1:] for line in lines]


def test_the_ci_workflow_runs_check_all_and_verify_with_data():
    commands = _workflow_commands()
    assert any(argv[0] == "check-all" and "--shard" in argv for argv in commands)
    assert any(argv[0] == "verify" and "--data" in argv for argv in commands)


@pytest.mark.parametrize("argv", _workflow_commands(), ids=" ".join)
def test_every_workflow_command_parses(argv):
    args = build_parser().parse_args(argv)  # a usage error would raise SystemExit
    if args.command == "check-all":
        from inspector.checkall import parse_shard

        assert parse_shard(args.shard) == (1, 2)


def test_use_from_python_summarizes_exports_and_verifies(tmp_path):
    # The worktree's own inspector, not whatever copy is installed.
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "use_from_python.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total params: 4,214,336" in result.stdout  # the torchinfo summary
    assert result.stdout.count("PASSED | ") == 2
    assert (tmp_path / "exercise_model.onnx").is_file()
    assert (tmp_path / "golden" / "test_data_set_5" / "output_0.pb").is_file()


def test_the_pytest_example_passes_and_can_fail(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "verify_in_pytest", EXAMPLES / "verify_in_pytest.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.test_exercise_model_exports_faithfully()

    # The same test against an export that silently lost its BatchNorm must fail.
    import inspector.export.cache as export_cache

    real_export = export_cache.export_onnx

    def export_without_batchnorm(loaded, output, **options):
        module = loaded.module
        saved, module.bn = module.bn, __import__("torch").nn.Identity()
        try:
            return real_export(loaded, output, **options)
        finally:
            module.bn = saved

    monkeypatch.setattr(export_cache, "export_onnx", export_without_batchnorm)
    with pytest.raises(AssertionError, match="FAILED"):
        example.test_exercise_model_exports_faithfully()
