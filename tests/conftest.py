"""Shared fixtures: run the CLI in-process and capture what it prints."""

from __future__ import annotations

import json

import pytest

from inspector.cli import main


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """cli("summary", "relu") -> CliResult(code, out, err), run in this process."""

    def run(*argv: str) -> CliResult:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session", autouse=True)
def _private_export_cache(tmp_path_factory):
    """Keep the suite's exports out of the user's ~/.cache/inspector; share them across tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path_factory.mktemp("export-cache")))
        yield
