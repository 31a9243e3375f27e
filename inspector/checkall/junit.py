"""check-all's report as JUnit XML, the format CI dashboards read (GitHub, GitLab, Jenkins).

One <testcase> per model, with the time its check took; a model whose outputs mismatch is a
<failure> whose text is verify's per-output diff table, one that could not be checked (an export
error, a model onnxruntime cannot run) is an <error>.
"""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ElementTree
from typing import Any

CLASSNAME = "inspector.check-all"
# Characters XML 1.0 forbids (exporter messages can carry terminal colour codes).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def junit_xml(report) -> str:
    """A CheckAllReport as a JUnit XML document."""
    name = "inspector check-all"
    if report.shard:
        name += f" (shard {report.shard[0]}/{report.shard[1]})"
    counts: dict[str, Any] = {
        "tests": str(len(report.checks)),
        "failures": str(sum(not c.passed and not c.error for c in report.checks)),
        "errors": str(sum(bool(c.error) for c in report.checks)),
        "time": f"{report.seconds or sum(c.seconds or 0 for c in report.checks):.3f}",
    }
    suites = ElementTree.Element("testsuites", name=name, **counts)
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=name,
        skipped="0",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
        **counts,
    )
    for check in report.checks:
        _testcase(suite, check)
    ElementTree.indent(suites)
    text = ElementTree.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n"


def _testcase(suite, check) -> None:
    case = ElementTree.SubElement(
        suite, "testcase", classname=CLASSNAME, name=check.model, time=f"{check.seconds or 0:.3f}"
    )
    if check.error:
        error = ElementTree.SubElement(
            case, "error", message=_clean(check.error), type="InspectorError"
        )
        error.text = _clean(check.error)
    elif not check.passed:
        details = check.details or "onnxruntime does not match PyTorch"
        failure = ElementTree.SubElement(
            case, "failure", message=_clean(details.splitlines()[0]), type="mismatch"
        )
        failure.text = _clean(details)
    if check.warnings:
        output = ElementTree.SubElement(case, "system-out")
        output.text = "\n".join(f"warning: {_clean(w)}" for w in check.warnings)


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)
