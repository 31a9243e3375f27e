"""torch's inductor cache kept out of $TMPDIR: a folder of ours, removed when we are done.

Importing torch._dynamo makes torch's inductor cache folder ($TMPDIR/torchinductor_<user>, from
torch._inductor's cache_dir) and leaves it there; torch.export imports it, and so does the first
call of any function torch keeps dynamo out of (the meta device's decompositions, a dispatch mode's
handler), so a summary of a model built on the meta device made it. Torch reads the folder from
TORCHINDUCTOR_CACHE_DIR, and sets that variable itself once it has made the folder, so the variable
names ours for as long as we hold it. A folder the user chose (the variable already set) is theirs:
left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .leftovers import owned_folder_removed

CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


@contextmanager
def inductor_cache_removed() -> Iterator[None]:
    """Point torch's inductor cache at a fresh folder of ours for the block, then remove it and
    unset the variable again, unless the variable was already set (the user's folder, or torch's
    own from before)."""
    if os.environ.get(CACHE_VARIABLE):
        yield
        return
    with ExitStack() as stack:
        try:
            folder = stack.enter_context(owned_folder_removed("inspector-inductor-"))
        except OSError:  # no writable $TMPDIR: torch cannot make its own folder there either
            folder = None
        if folder is not None:
            stack.callback(_unset, folder, os.getpid())
            os.environ[CACHE_VARIABLE] = str(folder)
        yield


def _unset(folder: Path, pid: int) -> None:
    """Our folder's name out of the variable (torch may have made it absolute), in our process."""
    if os.getpid() == pid and os.environ.get(CACHE_VARIABLE) in (
        str(folder),
        os.path.abspath(folder),
    ):
        del os.environ[CACHE_VARIABLE]
