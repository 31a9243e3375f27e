"""Browser tests on a machine without Chromium: skipped, with one notice line for all of them.

With INSPECTOR_REQUIRE_BROWSER=1 (CI, which installs Chromium) nothing is skipped here: each browser
test then fails on its own (require_browser) instead of passing as a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (no Chromium, no Playwright), or None."""
    from inspector.errors import InspectorError
    from inspector.netron.render import find_chromium

    try:
        find_chromium()
    except InspectorError as missing:
        return str(missing)
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: needs Chromium and Playwright")


def pytest_collection_modifyitems(config, items):
    browser_tests = [item for item in items if item.get_closest_marker("browser")]
    if not browser_tests or os.environ.get("INSPECTOR_REQUIRE_BROWSER") == "1":
        return
    missing = missing_browser()
    if missing is None:
        return
    skip = pytest.mark.skip(reason=f"no browser for the rendering tests: {missing}")
    for item in browser_tests:
        item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Report every browser skip at this file, so `-ra` folds them into one line."""
    report = yield
    if (
        report.skipped
        and item.get_closest_marker("browser")
        and isinstance(report.longrepr, tuple)
        and len(report.longrepr) == 3
    ):
        report.longrepr = (str(Path(__file__)), None, report.longrepr[2])
    return report
