"""Exit statuses, and the one exception that means "the user gave us something we cannot use"."""

from __future__ import annotations

import contextlib
import enum
import signal
import threading
from collections.abc import Iterator
from contextvars import ContextVar


class ExitStatus(enum.IntEnum):
    """What `inspector` exits with; CI tells a failed check (1) from bad input (2) from a bug (3)."""

    OK = 0
    FAILED = 1  # a check ran and failed (e.g. onnxruntime disagrees with PyTorch)
    USAGE = 2  # bad input: one line on stderr, no traceback
    INTERNAL = 3  # a bug in inspector or a library, as pytest exits 3 on an internal error
    INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class InspectorError(Exception):
    """A user or input error: `main()` prints it as one line and exits with code 2.

    Raise it with a message that names the thing and the cause, e.g.
    ``InspectorError("checkpoint model.pt: 3 missing keys: conv.weight, ...")``, and chain the
    library's exception (``raise ... from error``) so that `--debug` shows the root cause.
    """

    exit_code = ExitStatus.USAGE

    def __str__(self) -> str:
        # Exporter and onnxruntime messages can span lines; the contract is one line.
        return " ".join(super().__str__().split())


class LibraryError(InspectorError):
    """A library failed on input it should take: one line naming the library, exit 3 (a bug,
    though not the user's)."""

    exit_code = ExitStatus.INTERNAL


# A message names an option as its caller wrote it: `--opset 99` on the command line, `opset=99`
# from Python. The CLI sets this while a command runs.
_on_command_line: ContextVar[bool] = ContextVar("inspector_on_command_line", default=False)
_NO_VALUE = object()


@contextlib.contextmanager
def on_command_line() -> Iterator[None]:
    token = _on_command_line.set(True)
    try:
        yield
    finally:
        _on_command_line.reset(token)


def naming_flags() -> bool:
    """Whether messages name flags (the command line runs): a child process that does a
    command's work is told, so that its messages name them too (onnx.files.run_checked)."""
    return _on_command_line.get()


def option(flag: str, parameter: str, value: object = _NO_VALUE) -> str:
    """`--opset 99` while the command line runs, `opset=99` from Python (without a value: the
    flag, or the parameter's name)."""
    if _on_command_line.get():
        return flag if value is _NO_VALUE else f"{flag} {value}"
    return parameter if value is _NO_VALUE else f"{parameter}={value!r}"


# Ctrl-C can land inside a library that swallows the KeyboardInterrupt (torch, mid-import, turns it
# into a later "partially initialized module" error). The CLI's signal handler remembers it here, so
# an interrupt always ends the command with 128 + the signal, whatever became of the exception.
# SIGTERM and SIGHUP (a `kill`, a closed terminal) are handled the same way: clean up, then exit.
_interrupted = False
_signal = signal.SIGINT


def note_interrupt(signum=None, frame=None):
    global _interrupted, _signal
    _interrupted = True
    _signal = signal.Signals(signum) if signum else signal.SIGINT
    if _deferred is not None:
        _deferred.append(_signal)  # raised when the block ends
        return
    raise KeyboardInterrupt


# While the main thread is in an interrupts_deferred block: the signals that came in it.
_deferred: list[signal.Signals] | None = None


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back the KeyboardInterrupt of a signal that lands in the block until its end. For
    a few lines that make something their caller must clean up (a temporary folder between its
    mkdir and the `try` that removes it): blocking the signal would not do, since another thread
    (torch's, onnxruntime's) takes it and Python still runs the handler here."""
    global _deferred
    # Signal handlers run in the main thread only; an outer block raises for an inner one.
    if threading.current_thread() is not threading.main_thread() or _deferred is not None:
        yield
        return
    _deferred = []
    try:
        yield
    finally:
        came, _deferred = _deferred, None
    if came:
        raise KeyboardInterrupt


def was_interrupted() -> bool:
    return _interrupted


def forget_interrupts() -> None:
    global _interrupted, _signal
    _interrupted, _signal = False, signal.SIGINT


def raise_if_interrupted() -> None:
    """Before a step that cannot be taken back (renaming a finished file into place): stop if an
    interrupt came, even one a library swallowed."""
    if _interrupted:
        raise KeyboardInterrupt


def interrupted_status() -> int:
    """128 + the signal that interrupted us (130 for Ctrl-C), as shells report a killed command."""
    return 128 + int(_signal)


def interrupted_message() -> str:
    if _signal == signal.SIGINT:
        return "inspector: interrupted"
    return f"inspector: interrupted by {_signal.name}"


def handles_interrupts() -> bool:
    """True while the CLI's handler is installed: only then does a KeyboardInterrupt that
    was_interrupted() does not know of come from code, not from a signal."""
    return signal.getsignal(signal.SIGINT) is note_interrupt
