"""Keep the exporter quiet, and turn its many-paragraph failures into one line.

torch.onnx talks through warnings, logging (glog-style "W1128 ..." lines), prints of FX graphs on
stderr and ANSI colours; none of that helps a user unless they ask for it with --verbose.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"This is step (\d+)/(\d+)")
_STEP_NAMES = {"1": "torch.export", "2": "decomposition", "3": "translation to ONNX"}
_OP = re.compile(r"op='([\w.:]+)'|target=torch\.ops\.([\w.]+)")
_SUMMARY = "## Exception summary"
_CALL_SITE = re.compile(r'File "([^"]+)", line (\d+), in \w+\n\s+(.+)')


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Hide the exporter's warnings, log lines and prints (unless `verbose`).

    With `verbose` its prints go to stderr, so stdout still carries only our result.
    """
    if verbose:
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    sink = io.StringIO()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            _native_output_hidden(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _native_output_hidden() -> Iterator[None]:
    """Point file descriptors 1 and 2 at a scratch file: the TorchScript exporter prints its graph
    from C++ on failure, past anything Python redirects."""
    saved = []
    try:
        with tempfile.TemporaryFile() as scratch:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(scratch.fileno(), fd)
            yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def exporter_failure(error: BaseException) -> str:
    """One line: the failing step, the op when one is named, and the innermost reason."""
    text = strip_ansi(str(error))
    parts = []
    step = _STEP.search(text)
    if step:
        name = _STEP_NAMES.get(step.group(1), "export")
        parts.append(f"export failed at step {step.group(1)}/{step.group(2)} ({name})")
    else:
        parts.append("export failed")
    op = _OP.search(text)
    if op:
        parts.append(f"op {op.group(1) or op.group(2).removesuffix('.default')}")
    site = _CALL_SITE.search(text)
    if site:
        parts.append(
            f"at {site.group(1).rsplit('/', 1)[-1]}:{site.group(2)} `{site.group(3).strip()}`"
        )
    return ", ".join(parts) + f": {_reason(text, error)}"


def _reason(text: str, error: BaseException) -> str:
    """The first line of the innermost exception the exporter summarized, else of the message."""
    if _SUMMARY in text:
        summary = text.split(_SUMMARY, 1)[1].strip()
        text = summary.split("\n\n", 1)[0]
        text = re.sub(r"^<class '[\w.]+'>:\s*", "", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    return " ".join(line.split())
