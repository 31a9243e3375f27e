"""Temporary folders that name their owner, so the next run can remove the ones a killed run left.

Ctrl-C, SIGTERM and SIGHUP let a command remove its temporary folders on the way out; SIGKILL (or a
power cut) does not. Each such folder is named `<prefix><host>-<pid>-<random>`, and `owned_folder`
first removes the folders with the same prefix, in the same place, whose process is gone: made on
this host, by this user, and no process with that pid is running.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InspectorError, interrupts_deferred

# mkdtemp's random suffix uses only [a-z0-9_]: the last two dashes end the host and the pid.
_OWNER = re.compile(r"^(?P<host>.*)-(?P<pid>\d+)-[a-z0-9_]+$")


def owned_folder(prefix: str, parent=None) -> Path:
    """A fresh folder (mode 0700) in `parent` (default: $TMPDIR) whose name records this process;
    abandoned ones with the same prefix are removed first. OSError as from tempfile.mkdtemp."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    remove_abandoned(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{_host()}-{os.getpid()}-", dir=parent))


@contextlib.contextmanager
def owned_folder_removed(prefix: str, parent=None, *, cannot: str | None = None) -> Iterator[Path]:
    """`owned_folder` for the block, then removed whatever happens, also when a Ctrl-C lands
    between its mkdir and the block (a check-all worker told to stop just then left it). With
    `cannot`, a folder that cannot be made is the InspectorError "{cannot}: {why}". A process the
    block forked (a model's code may) leaves the folder to this one."""
    pid, folder = os.getpid(), None
    try:
        with interrupts_deferred():
            folder = _made(prefix, parent, cannot)
        yield folder
    finally:
        if folder is not None and os.getpid() == pid:
            shutil.rmtree(folder, ignore_errors=True)


def _made(prefix: str, parent, cannot: str | None) -> Path:
    try:
        return owned_folder(prefix, parent)
    except OSError as error:
        if cannot is None:
            raise
        raise InspectorError(f"{cannot}: {error.strerror or error}") from error


def remove_abandoned(parent: Path, prefix: str) -> list[Path]:
    """Remove the folders `owned_folder` made in `parent` whose process has ended; return them."""
    removed = []
    with contextlib.suppress(OSError):  # an unreadable folder: nothing we may clean there
        for entry in parent.iterdir():
            if entry.name.startswith(prefix) and _abandoned(entry, entry.name[len(prefix) :]):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def _abandoned(entry: Path, owner: str) -> bool:
    match = _OWNER.match(owner)
    if not match or match["host"] != _host():  # another machine's run, on a shared disk
        return False
    try:
        info = entry.lstat()
    except OSError:
        return False
    if not entry.is_dir() or entry.is_symlink() or info.st_uid != os.geteuid():
        return False
    return not _running(int(match["pid"]))


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such pid at all)
        return False
    except PermissionError:  # alive, as another user
        return True
    return True


def _host() -> str:
    """This machine's name, reduced to characters that are safe in a file name."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"
