"""The `inspector` command line: one module per command, each with add_arguments() and run().

Only the standard library is imported at module level, so `inspector --help` and usage errors answer
at once; torch, onnx and onnxruntime are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
from importlib import import_module

from ..errors import ExitStatus, InspectorError, forget_interrupts, note_interrupt, was_interrupted
from ..text import first_line

# In the order `inspector --help` lists them; each is a module of this package.
COMMANDS = (
    "listing",
    "summary",
    "export",
    "verify",
    "diff",
    "view",
    "render",
    "bench",
    "check_all",
    "conv_shape",
)

EPILOG = """\
examples:
  inspector list
  inspector summary exercise_model
  inspector summary my_models.py:Net --input-shape 1,3,32,32 --checkpoint net.pt
  inspector export mobilenet_v3_small -o mnv3.onnx
  inspector verify exercise_model
  inspector verify mnv3.onnx --data golden/
  inspector check-all --format json
  inspector diff mobilenet_v3_small mobilenet_v3_small --graph authored --graph optimized
  inspector view mobilenet_v3_small
  inspector render exercise_model -o exercise_model.png
  inspector bench exercise_model --batch-sizes 1,8
  inspector conv-shape --input 128 --kernel 3 --output 64

exit codes: 0 success, 1 a check failed, 2 user or input error, 3 internal error (a bug),
130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other user error."""

    def error(self, message):
        message = " ".join(message.split())  # an argument holding a newline must not add a line
        sys.stderr.write(f"inspector: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(ExitStatus.USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="inspector",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Summarize, export, verify and view PyTorch models.",
    )
    parser.add_argument("--version", action="version", version=f"inspector {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error, its root cause included",
    )
    for name in COMMANDS:
        command = import_module(f".{name}", __name__)
        p = sub.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.HELP,
            epilog=getattr(command, "EPILOG", None),
            parents=[common],
        )
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status (tests call this in-process)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else ExitStatus.USAGE
    args.stdout = sys.stdout
    with _interrupts_remembered(), _json_stdout_kept_clean(args):
        code = _run_command(args)
    # A failure after Ctrl-C is the interrupt's doing; a command that ends on Ctrl-C by design
    # (view) and returns 0 keeps its code.
    if was_interrupted() and code not in (ExitStatus.OK, ExitStatus.INTERRUPTED):
        return _fail(args, "inspector: interrupted", ExitStatus.INTERRUPTED)
    return int(code)


@contextlib.contextmanager
def _interrupts_remembered():
    forget_interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    previous = signal.signal(signal.SIGINT, note_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _json_stdout_kept_clean(args):
    """While a command writes JSON, whatever else prints (a model's forward) goes to stderr."""
    if getattr(args, "format", "text") != "json":
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _run_command(args) -> int:
    try:
        return args.run(args)
    except InspectorError as error:
        return _fail(args, f"inspector: error: {error}", error.exit_code)
    except KeyboardInterrupt:
        return _fail(args, "inspector: interrupted", ExitStatus.INTERRUPTED)
    except BrokenPipeError:  # `inspector ... | head`: the reader left, which is not our error
        sys.stderr.close()
        return ExitStatus.OK
    except Exception as error:  # a bug in inspector or in a library: still one line, not a crash
        detail = f": {first_line(error)}" if str(error).strip() else ""
        message = f"inspector: internal error: {type(error).__name__}{detail}"
        return _fail(args, f"{message} (run with --debug for the traceback)", ExitStatus.INTERNAL)


def _fail(args, message: str, code: int) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
