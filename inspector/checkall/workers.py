"""Run a function over items in N worker processes: results in the items' order, Ctrl-C stops all.

Workers are fresh interpreters (multiprocessing's spawn: forking a process that has torch's
thread pools running can hang the child), each handed the next item as soon as it is free, so a
slow model does not hold up the rest. Ctrl-C, whether the terminal sends it to every process or
only the parent gets it, makes each worker raise KeyboardInterrupt where it is, so its own clean-up
runs (temporary folders, staging folders, checker children); the parent waits for all of them and
then stops with the interrupt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ExitStatus, naming_flags, note_interrupt, on_command_line, was_interrupted

# How long a worker may take to finish its clean-up after Ctrl-C before it is killed.
STOP_SECONDS = 60.0


_STARTED = object()  # a worker's word that it began its item (after its imports)

# How long a worker past its deadline may take to clean up after SIGINT before it is killed.
TIMEOUT_STOP_SECONDS = 10.0


@dataclass
class _Worker:
    process: Any  # a multiprocessing process and its end of a pipe (their classes are private)
    connection: Any
    task: tuple | None = None  # (index, item) it is working on
    deadline: float | None = None  # time.monotonic() by which it must answer

    def overdue(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def run_in_workers(
    function: Callable,
    items: list,
    *,
    jobs: int,
    setup: Callable | None = None,
    setup_args: tuple = (),
    crashed: Callable,
    started: Callable = lambda item: None,
    finished: Callable = lambda item, result: None,
    timeout: float | None = None,
) -> list:
    """[function(item) for item in items], computed in `jobs` worker processes.

    `function`, `setup` and their arguments must be picklable (module-level functions). Each
    worker first calls setup(*setup_args). A worker that dies mid-item (a crash in native code,
    the OOM killer) gives crashed(item, reason) as that item's result, and a new worker takes
    its place. An item that takes longer than `timeout` seconds is stopped the same way (SIGINT,
    so its clean-up runs, then SIGKILL) and gives crashed(item, reason). An exception raised by
    `function` or `setup` stops every worker and is re-raised. `started` and `finished` are
    called in this process, for a progress display.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pending = list(enumerate(items))[::-1]
    results: list = [None] * len(items)
    workers: list[_Worker] = []
    try:
        for _ in range(min(jobs, len(items))):
            _start(workers, context, function, setup, setup_args)
        for worker in workers:
            _hand_out(worker, pending, started)
        while any(worker.task for worker in workers):
            for worker in _ready(workers):
                assert worker.task is not None  # _ready gives only busy workers
                index, item = worker.task
                if worker.overdue() and not worker.connection.poll():
                    _end(worker)
                    result = crashed(item, f"its worker process was stopped after {timeout:g} s")
                else:
                    result = _collect(worker, crashed, item)
                    if result is _STARTED:  # the clock runs from here, not from its imports
                        worker.deadline = None if timeout is None else time.monotonic() + timeout
                        continue
                results[index] = result
                finished(item, result)
                worker.task = None
                if not worker.process.is_alive():  # it died: a new one takes over the rest
                    worker.connection.close()
                    workers.remove(worker)
                    if not pending:
                        continue
                    worker = _start(workers, context, function, setup, setup_args)
                _hand_out(worker, pending, started)
    except BaseException:
        _stop(workers)
        raise
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.connection.send(None)  # no more work: the worker returns
        worker.process.join()
        worker.connection.close()
    return results


def _start(workers: list, context, function, setup, setup_args) -> _Worker:
    """A new worker, in `workers` before a Ctrl-C held back meanwhile can stop this process."""
    parent_end, child_end = context.Pipe()
    # A worker names options as this process does: flags for the command line, else parameters.
    args = (child_end, function, setup, setup_args, naming_flags())
    process = context.Process(target=_serve, args=args, name="inspector-worker")
    with _sigint_held():
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        workers.append(worker)
    return worker


def _hand_out(worker: _Worker, pending: list, started: Callable) -> None:
    if not pending:
        return
    worker.task = pending.pop()
    worker.deadline = None  # set when the worker says it started on it
    started(worker.task[1])
    worker.connection.send(worker.task)


def _ready(workers: list[_Worker]) -> list[_Worker]:
    """The busy workers that answered, died or ran past their deadline, once at least one has."""
    from multiprocessing.connection import wait

    busy = [worker for worker in workers if worker.task]
    waitables = [w.connection for w in busy] + [w.process.sentinel for w in busy]
    deadlines = [w.deadline for w in busy if w.deadline is not None]
    wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
    ready = set(wait(waitables, wait_for))
    return [w for w in busy if w.connection in ready or w.process.sentinel in ready or w.overdue()]


def _end(worker: _Worker) -> None:
    """Stop a worker that ran past its deadline: SIGINT first, so its clean-up (staging folders,
    checker children) runs, then SIGKILL if the model does not let it return."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker.process.pid, signal.SIGINT)
    worker.process.join(TIMEOUT_STOP_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()


def _collect(worker: _Worker, crashed: Callable, item):
    """The worker's answer for its item; raised again here if `function` raised."""
    try:
        kind, value = worker.connection.recv()
    except (EOFError, OSError):  # it died without answering
        worker.process.join()
        return crashed(item, _death(worker.process.exitcode))
    if kind == "raised":
        raise value
    if kind == "started":
        return _STARTED
    return value


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"its worker process was killed by {signal.Signals(-exitcode).name}"
    return f"its worker process exited with status {exitcode}"


def _stop(workers: list[_Worker]) -> None:
    """Interrupt every worker, wait for each to clean up and exit (kill it after STOP_SECONDS)."""
    with _sigint_ignored():  # a second Ctrl-C must not cut this clean-up short
        for worker in workers:
            if worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGINT)
        for worker in workers:
            worker.process.join(STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Block SIGINT while a worker starts: it inherits the mask, so a Ctrl-C that lands while it
    is still importing waits until _serve can turn it into a clean stop. (The parent receives its
    own copy as soon as the mask is lifted again.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _serve(connection, function, setup, setup_args, flags: bool = False) -> None:
    """A worker's life: set up, then answer (index, item) requests until told to stop (None)."""
    with on_command_line() if flags else contextlib.nullcontext():
        _work(connection, function, setup, setup_args)


def _work(connection, function, setup, setup_args) -> None:
    signal.signal(signal.SIGINT, _interrupted_once)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # The parent prints the result; whatever a model prints here must not land in it (JSON).
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        if setup is not None:
            setup(*setup_args)
        while (task := connection.recv()) is not None:
            index, item = task
            connection.send(("started", index))  # set up and imported: its time starts now
            try:
                answer = ("done", function(item))
            except Exception as error:
                answer = ("raised", error)
            if was_interrupted():  # a library swallowed the KeyboardInterrupt: stop all the same
                raise KeyboardInterrupt
            connection.send(answer)
    except Exception as error:  # setup failed: the parent says why
        connection.send(("raised", error))
    except (KeyboardInterrupt, EOFError):  # Ctrl-C, or the parent is gone
        sys.exit(ExitStatus.INTERRUPTED)
    # Done. The interpreter's own teardown after an export takes over a second (torch's modules),
    # which the parent would wait for; every file and child process of the work was closed by
    # its own `with` already, so leave at once.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    connection.close()
    os._exit(0)


def _interrupted_once(signum, frame) -> None:
    """The first SIGINT stops the worker; later ones (the parent relays the user's) must not
    interrupt its clean-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    note_interrupt(signum, frame)
