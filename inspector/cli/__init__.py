"""The `inspector` command line: one module per command, each with add_arguments() and run().

Only the standard library is imported at module level, so `inspector --help` and usage errors answer
at once; torch, onnx and onnxruntime are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
import traceback
from importlib import import_module

from ..errors import (
    ExitStatus,
    InspectorError,
    forget_interrupts,
    interrupted_message,
    interrupted_status,
    note_interrupt,
    on_command_line,
    was_interrupted,
)
from ..util.inductor import inductor_cache_removed
from ..util.progress import steps_shown
from ..util.text import first_line, printable

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
    "checkall",
    "convshape",
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
130 interrupted (128 + signal: SIGTERM 143, SIGHUP 129)
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other user error."""

    def error(self, message):
        message = printable(" ".join(message.split()))  # an argument's newline adds no line
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
    common = _Parser(add_help=False)
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
    args.pid = os.getpid()  # a child the model's code forked must not print or exit as us
    code = None
    try:
        with (
            _interrupts_remembered(),
            inductor_cache_removed(),  # torch's cache folder, made on importing torch._dynamo
            _json_stdout_kept_clean(args),
            steps_shown(sys.stderr),
            _exits_in_finalizers_quiet(),
            on_command_line(),
        ):
            code = _run_command(args)
    except KeyboardInterrupt:  # a Ctrl-C while the command's contexts are set up or taken down
        if code is None:
            code = _fail(args, interrupted_message(), interrupted_status())
    leave_if_forked(args)
    # A failure after Ctrl-C is the interrupt's doing; a command that ends on Ctrl-C by design
    # (view) and returns 0 keeps its code. SIGTERM and SIGHUP end every command with 128 + signal.
    ended_by_design = code == ExitStatus.OK and interrupted_status() == ExitStatus.INTERRUPTED
    if was_interrupted() and code != interrupted_status() and not ended_by_design:
        return _fail(args, interrupted_message(), interrupted_status())
    return int(code)


# Each stops a command as Ctrl-C does: cleanup runs, then exit 128 + signal.
INTERRUPT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")


@contextlib.contextmanager
def _interrupts_remembered():
    forget_interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    previous = {}
    for name in INTERRUPT_SIGNALS:
        number = getattr(signal, name, None)
        # An ignored SIGTERM or SIGHUP (nohup) stays ignored. SIGINT is taken even when ignored
        # (a background job): Ctrl-C handling is what the command relies on to clean up.
        if number is None or (name != "SIGINT" and signal.getsignal(number) == signal.SIG_IGN):
            continue
        previous[number] = signal.signal(number, note_interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _exits_in_finalizers_quiet():
    """A model's __del__ that calls sys.exit() cannot end anything (Python ignores it), but its
    default report is a traceback: drop it, as the command's outcome does not change."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, SystemExit):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


@contextlib.contextmanager
def _json_stdout_kept_clean(args):
    """While a command writes JSON, whatever else prints (a model's forward) goes to stderr."""
    if getattr(args, "format", "text") != "json":
        yield
        return
    with contextlib.redirect_stdout(sys.stderr), _descriptor_1_to_stderr(args):
        yield


@contextlib.contextmanager
def _descriptor_1_to_stderr(args):
    """Point file descriptor 1 at stderr too: model code that writes to sys.__stdout__, to
    os.write(1, ...) or from C must not land in the JSON document either. The document goes to
    a copy of the original descriptor."""
    for stream in (sys.stdout, sys.__stdout__, args.stdout):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if stream is not None:
                stream.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 or 2 (a daemon): sys.stdout's redirection is all we have
        yield
        return
    original = args.stdout
    try:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if original.fileno() == 1:  # it writes to the descriptor we just moved
                args.stdout = open(  # noqa: SIM115 (closed below, after the command)
                    saved, "w", encoding=original.encoding, errors="backslashreplace", closefd=False
                )
        yield
    finally:
        if args.stdout is not original:
            with contextlib.suppress(OSError, ValueError):
                args.stdout.close()
            args.stdout = original
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if sys.__stdout__ is not None:  # what the model wrote, before descriptor 1 moves back
                sys.__stdout__.flush()
        os.dup2(saved, 1)
        os.close(saved)


def leave_if_forked(args) -> None:
    """In a process the model's code forked (os.fork() in forward), end here, silently: only the
    command's own process prints its result and exit status. Buffers are the parent's: no flush."""
    if getattr(args, "pid", None) not in (None, os.getpid()):
        os._exit(0)


def _run_command(args) -> int:
    try:
        return args.run(args)
    except InspectorError as error:
        return _fail(args, f"inspector: error: {error}", error.exit_code)
    except KeyboardInterrupt:
        return _fail(args, interrupted_message(), interrupted_status())
    except BrokenPipeError:  # `inspector ... | head`: the reader left, which is not our error
        sys.stderr.close()
        return ExitStatus.OK
    except RecursionError:  # a model nested deeper than Python's stack allows: its shape, not a bug
        where = getattr(args, "model", None) or "the model"
        message = (
            f"inspector: error: {where}: nested too deeply (Python's recursion limit, "
            f"{sys.getrecursionlimit()}, was reached while walking its modules or running it)"
        )
        return _fail(args, message, ExitStatus.USAGE)
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            return _internal_error(args, error)
        where = f"{error.filename}: " if error.filename else ""
        return _fail(args, f"inspector: error: {where}{error.strerror}", ExitStatus.USAGE)
    except Exception as error:  # a bug in inspector or in a library: still one line, not a crash
        return _internal_error(args, error)
    except SystemExit as stop:  # none of ours: the model's code, where usercode did not wrap it
        ended = f"called sys.exit({stop.code!r})"
        return _fail(args, _user_code_ended(args, ended), ExitStatus.USAGE)
    except BaseException as error:  # a BaseException subclass only user code defines
        ended = f"raised {type(error).__name__}: {first_line(error)}"
        return _fail(args, _user_code_ended(args, ended), ExitStatus.USAGE)


# A full disk, a quota, a read-only file system, a name the file system refuses: the environment's
# doing wherever they surface, never a bug to report.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG}


def _internal_error(args, error: Exception) -> int:
    detail = f": {first_line(error)}" if str(error).strip() else ""
    message = f"inspector: internal error: {type(error).__name__}{detail}"
    return _fail(args, f"{message} (run with --debug for the traceback)", ExitStatus.INTERNAL)


def _user_code_ended(args, what: str) -> str:
    return f"inspector: error: {getattr(args, 'model', 'the model')}: its code {what}"


def _fail(args, message: str, code: int) -> int:
    leave_if_forked(args)
    if getattr(args, "debug", False):
        traceback.print_exc()
    # Names in a message come from files and models we were given: no escape sequence of theirs
    # reaches the terminal, and no newline of theirs forges a second line.
    print(printable(message), file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point (also `python -m inspector`)."""
    code = main()
    sys.unraisablehook = _quiet_exit_hook  # objects a model left behind, finalized at exit
    if _threads_left_running():
        # A model's module started a non-daemon thread (at import, say): the interpreter would
        # wait for it forever after the command is done. Flush what we printed and exit anyway.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _quiet_exit_hook(unraisable) -> None:
    if not isinstance(unraisable.exc_value, SystemExit):
        sys.__unraisablehook__(unraisable)


def _threads_left_running() -> bool:
    main_thread = threading.main_thread()
    return any(
        thread.is_alive() and not thread.daemon and thread is not main_thread
        for thread in threading.enumerate()
    )
