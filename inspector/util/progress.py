"""A progress bar on stderr for long work (check-all, bench): on a terminal only, never in CI logs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _Silent:
    def describe(self, text: str) -> None:
        pass

    def advance(self) -> None:
        pass


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
    terminal, and disappears when done (transient), leaving the result alone on the screen."""
    if not (enabled and sys.stderr.isatty()):
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
