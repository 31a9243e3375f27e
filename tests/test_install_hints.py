"""Every install hint works from any folder: it names the distribution on the package index
(pyproject's `name`, torch-inspector), never `.` (the clone) or `inspector` (someone else's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a user reads: messages from the code, the documentation, the examples and the CI workflow.
SHIPPED = [
    *sorted((ROOT / "inspector").rglob("*.py")),
    *sorted((ROOT / "models").rglob("*.py")),
    *sorted(ROOT.glob("*.md")),
    *sorted((ROOT / "examples").rglob("*.py")),
    *sorted((ROOT / "examples").rglob("*.md")),
    *sorted((ROOT / "examples").rglob("*.yml")),
]
PIP_INSTALL = re.compile(r"pip install ((?:--?[\w-]+(?:[= ]\S+)? )*)(['\"]?)([^\s'\"`]+)")


def distribution_name() -> str:
    """pyproject's [project] name (read without tomllib, which Python 3.10 lacks)."""
    project = (ROOT / "pyproject.toml").read_text().split("[project]", 1)[1]
    match = re.search(r'^name = "([^"]+)"$', project, re.MULTILINE)
    assert match, "pyproject.toml has no [project] name"
    return match.group(1)


def _hints() -> list[tuple[str, str]]:
    """(file:line, what follows `pip install`) for every hint that installs this project; an
    editable install (`-e .`) is about working in the clone, and fine in its documentation, but
    not in the CI workflow, which runs in a user's repository."""
    found = []
    for path in SHIPPED:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in PIP_INSTALL.finditer(line):
                options, target = match.group(1).split(), match.group(3)
                if "-e" in options and path.suffix != ".yml":
                    continue
                if target.split("[")[0] in {".", "inspector", distribution_name()}:
                    found.append((f"{path.relative_to(ROOT)}:{number}", target))
    return found


def test_the_distribution_is_torch_inspector():
    assert distribution_name() == "torch-inspector"  # `inspector` on the index is a 2012 package


@pytest.mark.parametrize(("where", "target"), _hints())
def test_install_hints_name_the_distribution(where, target):
    """`pip install .[render]` works only in the clone, `pip install inspector` installs another
    project."""
    assert target.split("[")[0] == distribution_name(), where


def test_readme_says_how_to_install_outside_the_clone():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    torch_line = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert torch_line in quick_start
    assert f"pip install {distribution_name()}" in quick_start
    assert quick_start.index(torch_line) < quick_start.index(f"pip install {distribution_name()}")
