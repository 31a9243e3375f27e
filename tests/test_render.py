"""inspector render: Netron in headless Chromium writes the whole graph as PNG or SVG."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
from _netron_helpers import require_browser, write_conv_bn_relu_onnx
from test_install_hints import distribution_name

import inspector.netron.render as render_module
from inspector.errors import InspectorError
from inspector.netron.render import png_size, render

SVG_TEXT = "{http://www.w3.org/2000/svg}text"
# The install hint works from any folder: the distribution's own name, not `pip install .[render]`
RENDER_EXTRA = f"pip install '{distribution_name()}[render]'"

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_conv_bn_relu_onnx(tmp_path_factory.mktemp("model"))


@pytest.fixture
def chromium():
    return require_browser()


def _svg_texts(svg: str) -> list[str]:
    return [element.text for element in ElementTree.fromstring(svg).iter(SVG_TEXT) if element.text]


@pytest.fixture(scope="module")
def rendered_svg(model, tmp_path_factory):
    """(RenderResult, SVG text) of the model, drawn once for the SVG and PNG tests."""
    require_browser()
    result = render(model, tmp_path_factory.mktemp("svg") / "graph.svg", timeout=60)
    return result, result.path.read_text(encoding="utf-8")


@pytest.mark.browser
def test_svg_names_the_layers_with_netron_styles(rendered_svg):
    result, svg = rendered_svg
    texts = _svg_texts(svg)
    for layer in ("Conv", "BatchNormalization", "Relu"):
        assert layer in texts
    assert "image" in texts and "features" in texts  # the graph's input and output names
    assert "fill: rgb(255, 255, 255)" in svg  # grapher.css inlined: white labels on node colours
    classes = {c for attr in re.findall(r'class="([^"]*)"', svg) for c in attr.split()}
    assert not classes & {"select", "hover"}  # no highlight left behind by the mouse
    assert (result.format, result.nodes) == ("svg", 5)  # 3 layers + input + output
    assert result.width > 100 and result.height > result.width  # a top-to-bottom chain


@pytest.mark.browser
def test_png_is_the_whole_graph_at_twice_the_svg_size(rendered_svg, model, tmp_path):
    """The real command in a subprocess: a PNG of the whole graph, and no PyTorch loaded."""
    png = tmp_path / "graph.png"
    command = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "inspector",
        "render",
        str(model),
        "-o",
        str(png),
        "--timeout",
        "60",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"wrote {png} (")
    width, height = png_size(png.read_bytes())
    svg_width, svg_height = render_module.svg_size(rendered_svg[1])
    # Not the 1280x720 viewport: the SVG's full extent at Netron's 2x export scale.
    assert (width, height) == (
        pytest.approx(2 * svg_width, abs=2),
        pytest.approx(2 * svg_height, abs=2),
    )
    assert 300 < height < render_module.MAX_PNG_SIDE
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line
    }
    assert "torch" not in imported and "playwright" in imported


@pytest.mark.browser
def test_timeout_is_a_user_error_and_writes_nothing(chromium, model, tmp_path):
    out = tmp_path / "graph.png"
    with pytest.raises(InspectorError, match="within 0.01 s"):
        render(model, out, timeout=0.01)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["graph.jpg", "graph", "no_such_folder/graph.png"])
def test_bad_output_path_is_a_user_error(cli, model, tmp_path, name):
    result = cli("render", model, "-o", tmp_path / name)
    assert result.code == 2
    assert result.err.startswith("inspector: error: ")
    assert list(tmp_path.iterdir()) == []


def test_invalid_onnx_leaves_the_existing_image_untouched(cli, tmp_path):
    bad, out = tmp_path / "bad.onnx", tmp_path / "graph.png"
    bad.write_bytes(b"")
    out.write_bytes(b"an older image")
    result = cli("render", bad, "-o", out)
    assert result.code == 2
    assert "is empty" in result.err
    assert out.read_bytes() == b"an older image"


def test_missing_chromium_says_how_to_install(cli, model, tmp_path, monkeypatch):
    monkeypatch.setattr(render_module, "_chromium_candidates", lambda: [None, "/nonexistent"])
    result = cli("render", model, "-o", tmp_path / "graph.png")
    assert result.code == 2
    assert "apt-get install chromium" in result.err and RENDER_EXTRA in result.err


def test_missing_playwright_says_how_to_install(cli, model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    result = cli("render", model, "-o", tmp_path / "graph.svg")
    assert result.code == 2
    assert RENDER_EXTRA in result.err


def test_png_size_reads_the_header():
    header = (
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\x0dIHDR"
        + (640).to_bytes(4, "big")
        + ((480).to_bytes(4, "big"))
    )
    assert png_size(header + b"\x08\x06\x00\x00\x00") == (640, 480)
    with pytest.raises(ValueError):
        png_size(b"GIF89a" + bytes(30))


@pytest.mark.parametrize(
    ("required", "outcome"), [("", pytest.skip.Exception), ("1", pytest.fail.Exception)]
)
def test_missing_browser_skips_locally_and_fails_in_ci(monkeypatch, required, outcome):
    monkeypatch.setattr(render_module, "_chromium_candidates", lambda: [])
    monkeypatch.setenv("INSPECTOR_REQUIRE_BROWSER", required)
    with pytest.raises(outcome, match="apt-get install chromium"):
        require_browser()


BROWSER_TESTS = """
import pytest
from _netron_helpers import require_browser

@pytest.fixture
def chromium():
    return require_browser()

@pytest.mark.browser
def test_svg(chromium):
    pass

@pytest.mark.browser
@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_drawn(chromium, suffix):
    pass

def test_without_a_browser():
    pass
"""


@pytest.mark.parametrize("required", ["", "1"])
def test_browser_tests_skip_with_one_notice_line_or_fail_in_ci(pytester, monkeypatch, required):
    """A machine without Chromium: every browser test skipped under one -ra line, not one per
    test; in CI (INSPECTOR_REQUIRE_BROWSER=1) each of them fails instead."""
    monkeypatch.setattr(render_module, "_chromium_candidates", lambda: [])
    monkeypatch.setenv("INSPECTOR_REQUIRE_BROWSER", required)
    pytester.makepyfile(test_drawing=BROWSER_TESTS)
    result = pytester.runpytest("-p", "_browser_plugin", "-ra")
    if required:
        result.assert_outcomes(passed=1, errors=3)  # failed in their fixture
        return
    result.assert_outcomes(passed=1, skipped=3)
    notices = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(notices) == 1, result.outlines
    assert notices[0].startswith("SKIPPED [3] ") and "apt-get install chromium" in notices[0]


def test_png_scale_keeps_huge_graphs_within_the_limits():
    assert render_module.png_scale(318, 13309) == render_module.PNG_SCALE  # MobileNetV3-Small
    tall = render_module.png_scale(300, 40000)
    assert 40000 * tall == pytest.approx(render_module.MAX_PNG_SIDE)
    wide = render_module.png_scale(20000, 20000)
    assert 20000 * 20000 * wide**2 == pytest.approx(render_module.MAX_PNG_PIXELS)


@pytest.mark.browser
def test_render_of_a_model_exports_the_authored_graph(chromium, cli, tmp_path):
    out = tmp_path / "exercise.svg"
    result = cli("render", "exercise_model", "-o", out, "--no-cache")
    assert result.code == 0, result.err
    texts = _svg_texts(out.read_text(encoding="utf-8"))
    for layer in ("Conv", "BatchNormalization", "Relu", "Gemm"):
        assert layer in texts


@pytest.mark.parametrize("command", ["view", "render"])
def test_help_loads_no_backend(command):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inspector", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "--graph" in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line
    }
    assert not imported & {"torch", "onnx", "netron", "playwright"}


class _FakeRoute:
    """Enough of Playwright's Route for _loopback_only: records what happened to the request."""

    def __init__(self, url, page=""):
        self.request = type("Request", (), {"url": url})()
        self.page, self.outcome = page, None

    def abort(self):
        self.outcome = ("abort",)

    def continue_(self):
        self.outcome = ("continue",)

    def fetch(self):
        return type("Response", (), {"text": lambda _: self.page})()

    def fulfill(self, response, body):
        self.outcome = ("fulfill", body)


def test_the_page_reaches_only_the_local_server():
    server = "http://127.0.0.1:4321/"
    page = '<meta name="version" content="9.3.3">\n<meta name="date" content="2020-01-01 00:00:00">'
    routes = {
        "https://ipinfo.io/json": _FakeRoute("https://ipinfo.io/json"),
        "analytics": _FakeRoute("https://analytics.google.com/g/collect?v=2"),
        "other_port": _FakeRoute("http://127.0.0.1:9999/"),
        "script": _FakeRoute(server + "view.js"),
        "page": _FakeRoute(server, page),
    }
    for route in routes.values():
        render_module._loopback_only(route, server)
    assert [routes[k].outcome for k in ("https://ipinfo.io/json", "analytics", "other_port")] == [
        ("abort",)
    ] * 3
    assert routes["script"].outcome == ("continue",)
    # The page loses its build date, so Netron never blocks on "Please update" (180 days old).
    assert routes["page"].outcome == ("fulfill", '<meta name="version" content="9.3.3">\n')
