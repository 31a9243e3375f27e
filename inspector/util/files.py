"""Files inspector reads and writes: refuse what is not a plain file, write all or nothing.

No torch here: the ONNX-only commands use these too.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from ..errors import InspectorError, raise_if_interrupted

LFS_MAGIC = b"version https://git-lfs.github.com/spec"
NAME_MAX = 255  # bytes in one file name, on every file system Linux and macOS use
PATH_MAX = 4096  # bytes in a whole path, its terminating NUL included


def check_name_length(path, what: str) -> Path:
    """Refuse a path the file system would refuse as too long (ENAMETOOLONG), naming `what`."""
    path = Path(path)
    if any(len(os.fsencode(part)) > NAME_MAX for part in path.parts):
        raise InspectorError(f"{what} {path}: a file name in it is longer than {NAME_MAX} bytes")
    if len(os.fsencode(path)) >= PATH_MAX:
        raise InspectorError(f"{what} {path}: the path is longer than {PATH_MAX - 1} bytes")
    return path


def existing_file(path, what: str) -> Path:
    """`path` if it is a non-empty regular file that is not a Git LFS pointer; else one line why."""
    path = check_name_length(path, what)
    if not path.exists():
        raise InspectorError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InspectorError(f"{what} {path} is a folder, not a file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise InspectorError(f"{what} {path} is not a regular file")
    with path.open("rb") as handle:
        head = handle.read(len(LFS_MAGIC))
    if not head:
        raise InspectorError(f"{what} {path} is empty")
    if head == LFS_MAGIC:
        raise InspectorError(
            f"{what} {path} is a Git LFS pointer, not the file; run 'git lfs pull'"
        )
    return path


def read_regular_file(path, what: str) -> bytes:
    """The bytes of `path` if it is a regular file; a folder, FIFO, device or socket is refused
    (reading one would fail, block forever or never end) before it is opened."""
    path = Path(path)
    try:
        kind = _kind(os.stat(path).st_mode)
        if kind is None:
            # O_NONBLOCK: should a FIFO take the file's place after the check, opening it does
            # not wait for a writer, and fstat below refuses it.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(descriptor, "rb") as stream:
                kind = _kind(os.fstat(descriptor).st_mode)
                if kind is None:
                    return stream.read()
    except OSError as error:
        raise InspectorError(f"{what} {path}: {error.strerror or error}") from error
    raise InspectorError(f"{what} {path} is {kind}, not a regular file")


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "neither a file nor a folder"


def write_atomically(path, data: bytes | str, what: str = "") -> Path:
    """Write beside the target, then rename: readers see the old file or the whole new one.

    An existing file keeps its permission bits; a new one follows the umask. A full disk or a
    read-only folder is a user error naming `what` (default: the path).
    """
    path = Path(path)
    label = what or str(path)
    payload = data.encode() if isinstance(data, str) else data
    try:
        handle, scratch = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".partial", dir=path.parent
        )
    except OSError as error:  # a read-only folder (for root too: chattr +i, a read-only mount)
        raise InspectorError(f"cannot write {label}: {error.strerror or error}") from error
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.chmod(scratch, _mode_for(path))
        raise_if_interrupted()  # a Ctrl-C a library swallowed: the old file stays
        os.replace(scratch, path)
    except OSError as error:  # a full disk, a name too long
        raise InspectorError(f"cannot write {label}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
    return path


def _mode_for(path: Path) -> int:
    """An existing file's permissions (not its set-id bits: this is new data), else the umask's."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells (/proc, since 4.7):
    setting it to read it back would briefly give files other threads create mode 0666."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)  # the strictest mask for the instant it takes to read it back
    os.umask(umask)
    return umask


def check_writable_destination(path, option: str) -> Path:
    """Refuse an output path we could not write, before any slow work starts."""
    path = check_name_length(path, option)
    if not path.parent.is_dir():
        raise InspectorError(f"{option} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise InspectorError(f"{option} {path} is a folder")
    return path


def check_folder_writable(path) -> None:
    """Refuse `path` if its folder takes no new file, by trying one: mode bits do not tell for
    root, nor for chattr +i or a read-only mount. For checks made before slow work."""
    path = Path(path)
    try:
        handle, scratch = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".probe", dir=path.parent
        )
    except OSError as error:
        raise InspectorError(f"cannot write {path}: {error.strerror or error}") from error
    os.close(handle)
    os.unlink(scratch)
