"""Running the user's code (a constructor, forward, an inputs function): its failures are the
user's, and become one line naming what was running."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InspectorError
from .text import one_line


@contextmanager
def user_code(what: str) -> Iterator[None]:
    """Turn an exception from user code into InspectorError("{what} failed: Type: reason"),
    chained to the original (so --debug shows it). SystemExit inside the code becomes an error
    too: a model that calls sys.exit() must not end the command with exit 0."""
    try:
        yield
    except InspectorError:
        raise
    except SystemExit as stop:
        raise InspectorError(f"{what} failed: the code called sys.exit({stop.code!r})") from stop
    except Exception as error:
        raise InspectorError(f"{what} failed: {type(error).__name__}: {one_line(error)}") from error


def forward_hint(reason: str) -> str:
    """The fix for a forward failure that is really a dtype problem (float values given where
    an Embedding takes token ids), appended to torch's own reason."""
    if "indices" in reason and ("Long" in reason or "Int" in reason):
        return (
            "; token ids are integers: give them as --input NAME=SHAPE:int64:0..VOCAB, "
            "e.g. --input input_ids=2x16:int64:0..1000"
        )
    return ""
