"""Where a model's own code runs (its import, its constructor, its forward, an inputs function):
however that code ends, the command ends with one line naming the model.

What a caller cannot catch as `Exception` is turned into an InspectorError here (exit 2):
`sys.exit()` (which would otherwise end the command with its code, 0 included, and no output), a
`BaseException` subclass of the model's own (a raw traceback), and a `KeyboardInterrupt` the code
raised itself rather than a Ctrl-C. Ordinary exceptions become one too when the caller says how
to name the failure (`failure=`); otherwise the caller handles them in its own terms.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InspectorError, handles_interrupts, option, was_interrupted
from ..util.text import first_line, one_line


@contextmanager
def user_code(model: str, part: str, *, failure: str | None = None) -> Iterator[None]:
    """Run the model's code: `part` says which ("its forward", "its constructor", "its import").

    With `failure` ("building net.py:Net failed"), an ordinary exception becomes
    InspectorError(f"{failure}: {Type}: {reason}"), chained to it for --debug.
    """
    pid = os.getpid()
    try:
        yield
    except InspectorError:
        raise
    except (Exception, GeneratorExit) as error:
        if failure is None or isinstance(error, GeneratorExit):
            raise
        raise InspectorError(f"{failure}: {type(error).__name__}: {one_line(error)}") from error
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
    finally:
        if os.getpid() != pid:
            # The model's code called os.fork() and this is the child coming back: it must not
            # go on to run the rest of the command a second time (print twice, write files,
            # hold check-all's pipes open). Buffers are the parent's: leave without flushing.
            os._exit(0)


def token_ids_hint() -> str:
    return "; token ids are integers: give them as " + option(
        "--input NAME=SHAPE:int64:0..VOCAB, e.g. --input input_ids=2x16:int64:0..1000",
        "inputs={NAME: 'SHAPE:int64:0..VOCAB'}, e.g. inputs={'input_ids': '2x16:int64:0..1000'}",
    )


def forward_hint(reason: str) -> str:
    """The fix for a forward failure that is really a dtype problem (float values given where
    an Embedding takes token ids), appended to torch's own reason."""
    if "indices" in reason and ("Long" in reason or "Int" in reason):
        return token_ids_hint()
    return ""
