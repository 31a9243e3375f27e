"""Progress on stderr for long work: the steps of one model's work (`step`), and a bar for many
items (check-all, bench).

Steps are shown only inside `steps_shown()`, which the command line enters and the Python API does
not (a library stays quiet unless asked): a spinner with the step on a terminal, one plain line per
step otherwise (a CI log), always on stderr, so `--format json`'s stdout stays one document.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from .text import printable

PREFIX = "inspector: step: "  # a plain step line starts so: `grep -v` drops them from a log


class _Steps:
    """Where steps go while shown: plain lines to `stream`, or a spinner on a terminal."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.texts: list[str] = []
        self.live: Any = None  # the spinner (a rich Live), while a step runs on a terminal
        self.muted = 0  # > 0 while a progress bar draws: it describes the work itself

    def enter(self, text: str) -> None:
        self.texts.append(text)
        if self.muted:
            return
        if not _is_terminal(self.stream):
            print(f"{PREFIX}{text}", file=self.stream, flush=True)
        elif self.live is None:
            self.live = _spinner(self.stream, text)
            self.live.start()
        else:
            self.live.update(_spinner_text(text))

    def leave(self) -> None:
        self.texts.pop()
        if self.live is None:
            return
        if self.texts:
            self.live.update(_spinner_text(self.texts[-1]))
        else:
            self.live.stop()
            self.live = None


_shown: _Steps | None = None


@contextmanager
def steps_shown(stream: TextIO | None = None) -> Iterator[None]:
    """Show the steps of the work done inside it on `stream` (default: stderr)."""
    global _shown
    outer, _shown = _shown, _Steps(stream or sys.stderr)
    try:
        yield
    finally:
        if _shown.live is not None:
            _shown.live.stop()
        _shown = outer


@contextmanager
def step(text: str) -> Iterator[None]:
    """One step of long work ("exporting relu to ONNX"): shown while it runs, if steps are shown."""
    steps = _shown
    if steps is None:
        yield
        return
    steps.enter(printable(text))  # a spec or a file name: one line, no escape sequences
    try:
        yield
    finally:
        steps.leave()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _spinner(stream: TextIO, text: str):
    from rich.console import Console
    from rich.live import Live

    # Transient: the result is left alone on the screen. Prints to stderr while it spins (a note,
    # a warning) are drawn above it; stdout is left alone (it may be a JSON document).
    return Live(
        _spinner_text(text),
        console=Console(file=stream),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=stream is sys.stderr,
        refresh_per_second=8,
    )


def _spinner_text(text: str):
    from rich.spinner import Spinner
    from rich.text import Text

    return Spinner("dots", Text(text))


class _Silent:
    def describe(self, text: str) -> None:
        pass

    def advance(self) -> None:
        pass


class _Lines(_Silent):
    """A bar off a terminal: each description as a step line (a CI log sees which model runs)."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def describe(self, text: str) -> None:
        print(f"{PREFIX}{text}", file=self._stream, flush=True)


class _Bar(_Silent):
    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def describe(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def advance(self) -> None:
        self._progress.advance(self._task)


@contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[_Silent]:
    """Yields a bar with describe(text) and advance(); it draws only when enabled and stderr is a
    terminal, and disappears when done (transient), leaving the result alone on the screen.
    Off a terminal, its descriptions are step lines when steps are shown. While it is there, the
    steps of the work inside it are not shown: the bar says what runs."""
    steps = _shown
    if steps is not None:
        steps.muted += 1
        if steps.live is not None:  # one live display at a time: the bar takes over
            steps.live.stop()
            steps.live = None
    try:
        with _bar(enabled, total, description, steps) as bar:
            yield bar
    finally:
        if steps is not None:
            steps.muted -= 1


@contextmanager
def _bar(enabled: bool, total: int, description: str, steps: _Steps | None) -> Iterator[_Silent]:
    if not (enabled and sys.stderr.isatty()):
        yield _Lines(steps.stream) if enabled and steps is not None else _Silent()
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
