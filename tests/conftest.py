"""Shared fixtures: run the CLI in-process and capture what it prints."""

from __future__ import annotations

import inspect
import json
import re

import pytest
from hypothesis import settings

from inspector.cli import main

# Browser tests without Chromium: skipped with one notice line (failed in CI).
pytest_plugins = ["_browser_plugin"]


def split_steps(err: str) -> tuple[str, list[str]]:
    """(stderr without the progress lines, the steps): the lines `inspector: step: ...` that
    long work prints on a stderr that is no terminal. Tests of errors, notes and warnings read the
    rest, so "one line" still means one line of error; tests of progress read the steps."""
    from inspector.util.progress import PREFIX

    lines = err.splitlines(keepends=True)
    steps = [line[len(PREFIX) :].rstrip("\n") for line in lines if line.startswith(PREFIX)]
    return "".join(line for line in lines if not line.startswith(PREFIX)), steps


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out = code, out
        self.err, self.steps = split_steps(err)

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


# A test that starts a Python process of its own (the CLI as a user runs it, a lecture script, a
# probe that torch stays unloaded) costs a second or more of imports: `make test-fast` leaves
# those out. Found from the test's source, so a new such test is marked without anyone
# remembering to.
_STARTS_A_PROCESS = re.compile(
    r"subprocess\.(run|Popen)|runpytest_subprocess|\b(_start|run_example|run_child|run_pytest)\("
)


# `make test` runs most tests on one pytest-xdist worker per core, then, alone, the ones that must
# not share the cores: a signal sent once work has visibly begun, a browser's page load, the soak's
# memory readings. Found from the test's source and file, as above; @pytest.mark.serial adds one.
_SENDS_A_SIGNAL = re.compile(r"\.send_signal\(|os\.killpg?\(\w*process")
_SERIAL_FILES = {"test_interrupts.py", "test_soak.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("browser") or item.path.name in _SERIAL_FILES:
            item.add_marker(pytest.mark.serial)
        function = getattr(item, "function", None)
        if function is None:
            continue
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        if _STARTS_A_PROCESS.search(source):
            item.add_marker(pytest.mark.subprocess)
        if _SENDS_A_SIGNAL.search(source):
            item.add_marker(pytest.mark.serial)


# `make test-fast` asks for fewer hypothesis examples: the property tests still run each property.
settings.register_profile("fast", max_examples=20)
