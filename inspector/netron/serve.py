"""Netron on loopback: serve one ONNX model, and nothing else, until the user stops it.

Netron's server answers `/data/<path>` with any file under the served model's folder, so it never
sees the user's folder: the model (and its external-data files) is copied into a private temporary
folder first, and that folder is removed when the server stops.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import shutil
import sys
import time
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path

from ..defaults import LOOPBACK
from ..errors import InspectorError, option
from ..onnx.files import check_onnx_file, external_data_locations
from ..util.leftovers import owned_folder_removed
from .guard import serve_guarded


@contextlib.contextmanager
def private_copy(model_path, name: str | None = None) -> Iterator[Path]:
    """Yield a copy of the model in a fresh folder only we can read; remove the folder afterwards.

    The copy is called `name` (default: the model's own file name): Netron shows it as its title.

    Copies, not hard links: onnx's checker refuses hard-linked external data, so linking the
    user's `.onnx.data` would make their own file fail `inspector verify` while we serve it.
    """
    source = Path(model_path)
    cannot = "cannot make a private folder for Netron"
    # Mode 0700; the copies killed runs left are removed first.
    with owned_folder_removed("inspector-netron-", cannot=cannot) as folder:
        # Netron puts the name into its page and URLs unescaped: keep it to safe characters.
        served = folder / re.sub(r"[^A-Za-z0-9._-]", "_", name or source.name)
        with _copy_errors(folder):
            shutil.copyfile(source, served)
            for location in external_data_files(source):
                target = folder / location
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source.parent / location, target)
        yield served


@contextlib.contextmanager
def _copy_errors(folder: Path) -> Iterator[None]:
    """A full $TMPDIR (or quota) while copying the model is the environment's, not a bug."""
    try:
        yield
    except OSError as error:
        raise InspectorError(
            f"cannot copy the model into {folder.parent} for Netron: {error.strerror or error}"
        ) from error


def external_data_files(model_path: Path) -> list[str]:
    """The relative paths of the files holding the model's external tensors (checked files only;
    a copy must never reach outside the model's folder, which this refuses once more)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return external_data_locations(model, model_path)


@contextlib.contextmanager
def netron_server(model_path, host: str = LOOPBACK, port: int | None = None) -> Iterator[str]:
    """Serve `model_path` with Netron on host:port (None: Netron's choice, 0: any free port).

    Yields the URL; stops the server on exit. A busy port is a user error. Requests must name
    this server in their Host header (DNS rebinding); see guard.py.
    """
    if port is not None and not 0 <= port <= 65535:
        raise InspectorError(
            f"{option('--port', 'port', port)}: a port is a number from 1 to 65535"
        )
    try:
        server = serve_guarded(model_path, host, port, remote=not _is_loopback(host))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise InspectorError(
                f"port {port} on {host} is already in use; choose another "
                f"{option('--port', 'port')} or leave it out"
            ) from error
        raise InspectorError(f"cannot serve on {host}:{port}: {error.strerror or error}") from error
    try:
        yield f"http://{_url_host(host)}:{server.address[1]}/"
    finally:
        server.stop()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def check_host(host: str, allow_remote: bool) -> bool:
    """True when `host` is not loopback (allowed only with allow_remote); raises otherwise."""
    if _is_loopback(host):
        return False
    if not allow_remote:
        raise InspectorError(
            f"{option('--host', 'host', host)} would let other machines download the model; "
            f"add {option('--allow-remote', 'allow_remote=True')} if that is what you want"
        )
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        return False


def view(
    model_path: str | os.PathLike[str],
    *,
    host: str = LOOPBACK,
    port: int | None = None,
    browser: bool = True,
    allow_remote: bool = False,
    announce: Callable[[str, str], None] | None = None,
    name: str | None = None,
) -> None:
    """Serve the ONNX file in Netron and block until Ctrl-C, which is the normal way to stop.

    Args:
        model_path: the .onnx file (checked before Netron reads it).
        host: the address to serve on; another than loopback needs `allow_remote`.
        port: the port (default: a free one).
        browser: open the page in a browser.
        allow_remote: allow a `host` other than loopback.
        announce: `announce(url, name)` replaces the lines printed for a person (the CLI's
            --format json).
        name: the file name Netron shows (default: the file's own).

    Returns:
        None, after Ctrl-C.
    """
    remote = check_host(host, allow_remote)
    model_path = check_onnx_file(model_path)
    name = name or model_path.name
    # Ctrl-C is the normal way to stop from the moment the server is up, also before the wait.
    stopping = contextlib.suppress(KeyboardInterrupt)
    with (
        private_copy(model_path, name) as served,
        netron_server(served, host, port) as url,
        stopping,
    ):
        if remote:
            print(
                f"inspector: warning: serving on {host}: anyone who can reach this machine "
                "can download the model",
                file=sys.stderr,
            )
        if announce:
            announce(url, name)
        else:
            print(f"Netron is serving {name} at {url} (Ctrl-C to stop)", flush=True)
        if browser and not webbrowser.open(url):
            print("inspector: no web browser found; open the URL yourself", file=sys.stderr)
        wait_for_ctrl_c()
    if not announce:
        print("Netron stopped", flush=True)


def wait_for_ctrl_c() -> None:
    """Block until Ctrl-C (KeyboardInterrupt). Its own function, so tests replace this and not
    time.sleep, which Netron's server thread uses too."""
    while True:
        time.sleep(0.2)
