"""Where a model's own code runs (its import, its constructor, its forward): however that code
ends, the command ends with one line naming the model.

Callers already turn the model's ordinary exceptions into messages. What they cannot catch as
`Exception` is turned into an InspectorError here (exit 2): `sys.exit()` (which would otherwise end
the command with its code, 0 included, and no output), a `BaseException` subclass of the model's
own (a raw traceback), and a `KeyboardInterrupt` the code raised itself rather than a Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InspectorError, handles_interrupts, was_interrupted
from .text import first_line


@contextmanager
def user_code(model: str, part: str) -> Iterator[None]:
    """Run the model's code: `part` says which ("its forward", "its constructor", "its import")."""
    try:
        yield
    except (Exception, GeneratorExit):
        raise
    except SystemExit as stop:
        raise InspectorError(
            f"{model}: {part} called sys.exit({stop.code!r}); a model's code must not end the process"
        ) from stop
    except KeyboardInterrupt as interrupt:
        # A real Ctrl-C (or SIGTERM) was noted by the CLI's handler; without that handler (the
        # Python API) we cannot tell, and a KeyboardInterrupt keeps meaning Ctrl-C.
        if was_interrupted() or not handles_interrupts():
            raise
        raise InspectorError(
            f"{model}: {part} raised KeyboardInterrupt, but no Ctrl-C came"
        ) from interrupt
    except BaseException as error:
        detail = f": {first_line(error)}" if str(error).strip() else ""
        raise InspectorError(f"{model}: {part} raised {type(error).__name__}{detail}") from error
