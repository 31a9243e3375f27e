"""Exit statuses, and the one exception that means "the user gave us something we cannot use"."""

from __future__ import annotations

import enum


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


# Ctrl-C can land inside a library that swallows the KeyboardInterrupt (torch, mid-import, turns it
# into a later "partially initialized module" error). The CLI's SIGINT handler remembers it here, so
# an interrupt always ends the command with 130, whatever became of the exception.
_interrupted = False


def note_interrupt(signum=None, frame=None):
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def was_interrupted() -> bool:
    return _interrupted


def forget_interrupts() -> None:
    global _interrupted
    _interrupted = False
