"""Netron's HTTP server behind a guard: only requests addressed to this server, for reading.

A server on 127.0.0.1 is still reachable from a web page in the user's browser through DNS
rebinding (the attacker's name resolves to 127.0.0.1, and the page reads the model as same-origin).
The page's requests carry the attacker's name in `Host`, so anything but our own address is 403.
Requests netron's handler would answer with a traceback on our stderr (a NUL in the path, a POST)
are answered 400 and 405 here, and nothing is logged. So are requests that name a second host some
other way: two Host headers, or an absolute-form target (http://attacker/...) naming another.

Netron's own handler and content provider serve the pages and the model; this module only puts a
check in front of them and runs the server in a daemon thread, as `netron.start` does.
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import socket
import threading
import urllib.parse
from dataclasses import dataclass

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
_log = logging.getLogger(__name__)


@dataclass
class GuardedServer:
    """A running server: its address (host, port) and a stop()."""

    address: tuple[str, int]
    httpd: http.server.ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def serve_guarded(model_path, host: str, port: int | None, remote: bool) -> GuardedServer:
    """Serve `model_path` with Netron's handler on host:port (None: 8080, 8081 or a free port, as
    Netron picks; 0: any free port). Raises OSError as binding does (EADDRINUSE for a busy port)."""
    from netron import server as netron_server

    served = str(model_path)
    content = netron_server._ContentProvider(None, served, served, served)
    address = netron_server._make_port((host, port)) if not port else (host, port)
    handler: type[_Guard] = type(
        "Handler",
        (_Guard, netron_server._HTTPRequestHandler),
        {"content": content, "allowed_hosts": frozenset()},
    )
    httpd = _Server(address, handler, bind_and_activate=False)
    try:
        httpd.server_bind()
        httpd.server_activate()
    except OSError:
        httpd.server_close()
        raise
    bound = (host, httpd.server_address[1])
    handler.allowed_hosts = allowed_hosts(host, bound[1], remote)
    handler.wildcard = remote and _is_wildcard(host)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="netron", daemon=True
    )
    thread.start()
    return GuardedServer(bound, httpd, thread)


def allowed_hosts(host: str, port: int, remote: bool) -> frozenset[str]:
    """The Host headers (lower case) a request to our server may carry."""
    names = set(LOOPBACK_NAMES)
    if remote:
        names.add(_bracketed(host))
        if _is_wildcard(host):  # 0.0.0.0: reached by this machine's name or any of its addresses
            names.update({socket.gethostname(), socket.getfqdn()})
    allowed = {f"{name}:{port}".lower() for name in names}
    if port == 80:  # browsers leave out the default port
        allowed |= {name.lower() for name in names}
    return frozenset(allowed)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _is_ip_literal(name: str) -> bool:
    """An address, not a name: no DNS answer can rebind it."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, bind_and_activate=True):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler, bind_and_activate)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer, say: not worth a traceback in the user's terminal.
        _log.debug("request from %s failed", client_address, exc_info=True)


class _Guard(http.server.BaseHTTPRequestHandler):
    """Checks every request before Netron's handler (the next class in the MRO) answers it."""

    allowed_hosts: frozenset[str] = frozenset()
    wildcard = False

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False  # already answered 400 (a malformed request line)
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:  # which one a proxy or cache believes is anyone's guess
            self.send_error(400, "more than one Host header")
            return False
        if not self.path.startswith("/") and not self._target_is_ours():
            self.send_error(400, "request target names another host")
            return False
        if not self._addressed_to_us((hosts[0] if hosts else "").strip().lower()):
            self.send_error(403, "Host not allowed")
            return False
        if self.command not in READ_METHODS:
            self.send_error(405)  # with an Allow header: see end_headers
            return False
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if "\0" in path:
            self.send_error(400, "NUL in path")
            return False
        return True

    def _target_is_ours(self) -> bool:
        """An absolute-form target (GET http://name:port/ HTTP/1.1) names a host of its own,
        which servers must prefer to the Host header: it has to be ours just the same."""
        target = urllib.parse.urlsplit(self.path)
        return target.scheme in ("http", "https") and self._addressed_to_us(target.netloc.lower())

    def _addressed_to_us(self, host: str) -> bool:
        if host in self.allowed_hosts:
            return True
        # With --allow-remote on a wildcard address, people reach us by any of our addresses.
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        port = self.server.server_address[1]  # type: ignore[index]
        return self.wildcard and host.endswith(f":{port}") and _is_ip_literal(name)

    def send_error(self, code, message=None, explain=None):
        super().send_error(code, message, explain)
        self.close_connection = True

    def end_headers(self):
        if getattr(self, "_status", None) == 405:
            self.send_header("Allow", ", ".join(READ_METHODS))
        super().end_headers()

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def log_message(self, format, *args):  # noqa: A002 (the stdlib's own name)
        # Netron's version joins the arguments as strings and raises on the status code.
        _log.debug(format, *args)
