"""Files inspector reads and writes: refuse what is not a plain file, write all or nothing.

No torch here: the ONNX-only commands use these too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import InspectorError

LFS_MAGIC = b"version https://git-lfs.github.com/spec"


def existing_file(path, what: str) -> Path:
    """`path` if it is a non-empty regular file that is not a Git LFS pointer; else one line why."""
    path = Path(path)
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
        os.replace(scratch, path)
    except OSError as error:  # a full disk, a name too long
        raise InspectorError(f"cannot write {label}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
    return path


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_writable_destination(path, option: str) -> Path:
    """Refuse an output path we could not write, before any slow work starts."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InspectorError(f"{option} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise InspectorError(f"{option} {path} is a folder")
    if len(os.fsencode(path.name)) > 255:
        raise InspectorError(f"{option} {path}: the file name is longer than 255 bytes")
    return path
