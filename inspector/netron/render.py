"""Netron in headless Chromium: draw an ONNX graph into a PNG or SVG file from the command line.

Netron has no command-line export (its issue 162), but its web page has "Export as SVG": it
writes the whole graph with the styles inlined. We serve the model on loopback (a private copy),
drive that menu action with Playwright, and keep the SVG; a PNG is that SVG photographed by the same
Chromium at twice its size, so both formats show exactly what Netron draws.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..defaults import LOOPBACK, RENDER_TIMEOUT
from ..errors import InspectorError, option
from ..onnx.files import check_onnx_file
from ..util.files import check_folder_writable, check_name_length, write_atomically
from ..util.html import short_repr
from ..util.progress import step
from ..util.text import first_line, xml_safe
from .serve import netron_server, private_copy

FORMATS = (".png", ".svg")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The distribution's name on the package index (pyproject.toml), right from any folder.
INSTALL_HINT = "apt-get install chromium, and pip install 'torch-inspector[render]' for Playwright"
PNG_SCALE = 2.0  # as Netron's own PNG export: 11 px labels stay sharp when zoomed in
MAX_PNG_SIDE = 32767  # the largest side that image viewers (and Chromium's canvas) all accept
MAX_PNG_PIXELS = 64 * 2**20  # 256 MB of RGBA in Chromium; huge graphs are drawn smaller
LABEL_PX = 11  # Netron's label size in CSS px
LEGIBLE_SCALE = 0.5  # below it labels are under 6 px: a picture of the shape, not of the names


@dataclass(frozen=True)
class RenderResult:
    """A written image: PNG sizes are pixels, SVG sizes are CSS pixels."""

    path: Path
    format: str
    width: int
    height: int
    nodes: int

    def __str__(self) -> str:
        unit = "px" if self.format == "png" else "CSS px"
        return f"wrote {self.path} ({self.width}x{self.height} {unit}, {self.nodes} nodes)"

    def __repr__(self) -> str:
        return short_repr("RenderResult", str(self))

    def _repr_svg_(self) -> str | None:
        """The drawing, inline in a notebook (an SVG one; a PNG one is _repr_png_)."""
        return self.path.read_text(encoding="utf-8") if self.format == "svg" else None

    def _repr_png_(self) -> bytes | None:
        return self.path.read_bytes() if self.format == "png" else None

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "nodes": self.nodes,
        }


def check_output(output) -> Path:
    """The image path, if its suffix and folder are usable; raise InspectorError otherwise."""
    path = check_name_length(output, "output")
    if path.suffix.lower() not in FORMATS:
        raise InspectorError(f"{path}: the output must end in .png or .svg")
    if path.is_dir():
        raise InspectorError(f"{path} is a folder, not an image file")
    if not path.parent.is_dir():
        raise InspectorError(f"{path}: folder {path.parent} does not exist")
    check_folder_writable(path.parent, str(path))
    return path


def find_chromium() -> str:
    """Debian's Chromium (or $INSPECTOR_CHROMIUM), and Playwright to drive it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        raise InspectorError(f"render needs Playwright and Chromium: {INSTALL_HINT}") from error
    for candidate in _chromium_candidates():
        if candidate and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    raise InspectorError(f"render needs Chromium, which is not installed: {INSTALL_HINT}")


def _chromium_candidates() -> list[str | None]:
    return [
        os.environ.get("INSPECTOR_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ]


def render(
    model_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    timeout: float = RENDER_TIMEOUT,
    name: str | None = None,
    decorate: Callable[[str], str] | None = None,
) -> RenderResult:
    """Draw the ONNX file at `model_path` with Netron into `output` (.png or .svg), atomically.

    Args:
        model_path: the .onnx file (checked before Netron reads it).
        output: the .png or .svg file to write.
        timeout: seconds to wait for Chromium and Netron to draw the graph.
        name: the file name Netron shows (default: the file's own).
        decorate: `decorate(svg) -> svg` may change Netron's SVG before it is written or
            photographed (a diff colours its nodes).

    Returns:
        A RenderResult: the file written, its size; it shows itself in a notebook.
    """
    output = check_output(output)
    model_path = check_onnx_file(model_path)
    chromium = find_chromium()
    with (
        private_copy(model_path, name) as served,
        netron_server(served, LOOPBACK, 0) as url,
        step("drawing the graph with Netron in headless Chromium"),
    ):
        image, nodes = _draw(chromium, url, output.suffix.lower(), timeout, decorate)
    write_atomically(output, image)
    if output.suffix.lower() == ".png":
        return RenderResult(output, "png", *png_size(image), nodes)
    return RenderResult(output, "svg", *svg_size(image.decode("utf-8")), nodes)


def _draw(chromium: str, url: str, suffix: str, timeout: float, decorate) -> tuple[bytes, int]:
    """The image and its node count; in a thread of its own where this one runs an asyncio loop
    (a Jupyter kernel), since Playwright's sync API refuses to run inside one."""
    if not _in_event_loop():
        return _draw_here(chromium, url, suffix, timeout, decorate)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="inspector-render") as worker:
        return worker.submit(_draw_here, chromium, url, suffix, timeout, decorate).result()


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _draw_here(chromium: str, url: str, suffix: str, timeout: float, decorate) -> tuple[bytes, int]:
    from playwright.sync_api import Error, TimeoutError, sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = _launch(playwright, chromium, timeout)
            try:
                svg, nodes = _netron_svg(browser, url, timeout)
                svg = decorate(svg) if decorate else svg
                image = _photograph(browser, svg, timeout) if suffix == ".png" else svg.encode()
            finally:
                browser.close()
    except TimeoutError as error:
        raise InspectorError(
            f"Chromium and Netron did not draw the graph within {timeout:g} s "
            f"(a large graph may need a longer {option('--timeout', 'timeout')})"
        ) from error
    except Error as error:
        raise InspectorError(f"Chromium failed: {first_line(error)}") from error
    return image, nodes


def _launch(playwright, chromium: str, timeout: float):
    from playwright.sync_api import Error, TimeoutError

    try:
        return playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, timeout=timeout * 1000, env=_browser_env()
        )
    except TimeoutError:
        raise
    except Error as error:
        raise InspectorError(
            f"Chromium ({chromium}) did not start: {first_line(error)}; {INSTALL_HINT}"
        ) from error


def _browser_env() -> dict | None:
    """Chromium makes a Unix socket under $TMPDIR at start and dies if the socket's path passes
    107 bytes, as under a deep TMPDIR (CI workspaces, pytest's tmp_path): give it /tmp there."""
    if len(tempfile.gettempdir()) <= 60 or not os.access("/tmp", os.W_OK):
        return None
    return {**os.environ, "TMPDIR": "/tmp"}


def _netron_svg(browser, url: str, timeout: float) -> tuple[str, int]:
    """Open Netron, accept its consent, wait for the laid-out graph, and export it as SVG."""
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(timeout * 1000)
    context.route("**/*", lambda route: _loopback_only(route, url))
    page = context.new_page()
    page.goto(url)
    accept = page.locator("#message-button", has_text="Accept")
    # Netron's body class is "default" once the layout is done, "alert" when it cannot open a file.
    graph = page.locator("body.default svg#canvas g.node")
    alert = page.locator("body.alert #message-text")
    accept.or_(graph).or_(alert).first.wait_for()
    if accept.is_visible():
        accept.press("Enter")  # the keyboard: a mouse click would leave a hover highlight
    graph.or_(alert).first.wait_for()
    if alert.count():
        raise InspectorError(f"Netron cannot draw this model: {alert.inner_text().strip()}")
    nodes = graph.count()
    with page.expect_download() as download:
        page.keyboard.press("Control+Alt+E")  # File > Export as SVG
    svg = xml_safe(Path(download.value.path()).read_text(encoding="utf-8"))
    context.close()
    return svg, nodes


def _loopback_only(route, url: str) -> None:
    """Let the page reach our server and nothing else (Netron asks ipinfo.io and analytics)."""
    request_url = route.request.url
    if not request_url.startswith(url):
        route.abort()
    elif request_url == url:
        # Netron's page refuses to open a model once its build date is 180 days old ("Please
        # update"); without the date it counts from today, so a pinned install keeps rendering.
        response = route.fetch()
        page = re.sub(r'<meta name="date" content="[^"]*">', "", response.text())
        route.fulfill(response=response, body=page)
    else:
        route.continue_()


def _photograph(browser, svg: str, timeout: float) -> bytes:
    """A PNG of the SVG, drawn at png_scale()."""
    scale = png_scale(*svg_size(svg))
    warn_if_illegible(scale, *svg_size(svg))
    # Only our SVG is on this page: no scripts, no network.
    context = browser.new_context(java_script_enabled=False, device_scale_factor=scale)
    context.set_default_timeout(timeout * 1000)
    context.route("**/*", lambda route: route.abort())
    page = context.new_page()
    page.set_content(f'<!DOCTYPE html><html><body style="margin:0">{svg}</body></html>')
    image = page.locator("svg#export").screenshot(type="png", scale="device")
    context.close()
    return image


def png_scale(width: float, height: float) -> float:
    """PNG_SCALE, or less when a graph of this size (CSS px) would exceed the PNG limits."""
    return min(
        PNG_SCALE, MAX_PNG_SIDE / max(width, height), (MAX_PNG_PIXELS / (width * height)) ** 0.5
    )


def warn_if_illegible(scale: float, width: int, height: int) -> None:
    """Say so when the PNG limits shrink the drawing until its labels cannot be read."""
    if scale >= LEGIBLE_SCALE:
        return
    print(
        f"inspector: warning: the graph is {width}x{height} CSS px, so the PNG is drawn at "
        f"{scale:.2g}x and its labels are {LABEL_PX * scale:.1f} px high, too small to read; "
        "write an SVG instead (-o NAME.svg), or draw fewer nodes with --depth",
        file=sys.stderr,
    )


def svg_size(svg: str) -> tuple[int, int]:
    root = ElementTree.fromstring(svg)
    return round(float(root.get("width", 0))), round(float(root.get("height", 0)))


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", data[16:24])
