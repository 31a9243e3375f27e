"""Real-browser tests of what Netron draws for inspector: an excerpt (--module), a collapsed view
(--depth) that Netron opens module by module, the fallback for huge graphs, and a coloured diff."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ElementTree

import onnx
import pytest
from _graph_helpers import residual_stack
from _netron_helpers import require_browser

import inspector.netron.drawable as drawable_module
from inspector.cli import main
from inspector.netron.diff_drawing import COLOURS
from inspector.netron.render import png_size, svg_size

SVG = "{http://www.w3.org/2000/svg}"
MODEL = "mobilenet_v3_small"

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def chromium():
    return require_browser()


def _texts(root) -> list[str]:
    return [e.text for tag in ("text", "tspan") for e in root.iter(f"{SVG}{tag}") if e.text]


def _nodes(root) -> dict:
    """Netron's graph nodes by ONNX name: <g id="node-name-NAME" class="node graph-node ...">."""
    return {
        g.get("id")[len("node-name-") :]: g
        for g in root.iter(f"{SVG}g")
        if g.get("id", "").startswith("node-name-")
    }


def _header_fill(group) -> str:
    header = next(g for g in group if "node-item" in g.get("class", "").split())
    style = header.find(f"{SVG}path").get("style")
    return style.split("fill:")[1].split(";")[0].strip()


def test_excerpt_draws_one_block_with_its_layers(cli, tmp_path):
    out = tmp_path / "block.svg"
    result = cli("render", MODEL, "--module", "features.4", "-o", out, "--format", "json")
    assert result.code == 0, result.err
    assert result.json()["nodes"] == 16  # 14 layers, the block's input and its output
    root = ElementTree.fromstring(out.read_text(encoding="utf-8"))
    texts = _texts(root)
    for layer in ("Conv", "BatchNormalization", "HardSwish", "ReduceMean", "HardSigmoid", "Mul"):
        assert layer in texts
    assert texts.count("BatchNormalization") == 3 and texts.count("HardSwish") == 2
    assert "Gemm" not in texts and "Add" not in texts  # nothing from outside the block


def test_depth_view_draws_modules_as_boxes_that_netron_opens(cli, tmp_path):
    """--depth 2 in the real page: 13 blocks and the head; opening features/4 shows its layers,
    and the page's title is the model's name, not the export cache's file name."""
    from playwright.sync_api import sync_playwright

    from inspector.export import cached_export
    from inspector.loading import load_model
    from inspector.netron.drawable import drawable
    from inspector.netron.render import CHROMIUM_ARGS, _loopback_only, find_chromium
    from inspector.netron.serve import netron_server, private_copy

    out = tmp_path / "depth2.svg"
    result = cli("render", MODEL, "--depth", "2", "-o", out)
    assert result.code == 0, result.err
    texts = _texts(ElementTree.fromstring(out.read_text(encoding="utf-8")))
    assert [f"features/{i}" in texts for i in range(13)] == [True] * 13
    assert "BatchNormalization" not in texts  # inside the functions, not drawn at this depth

    path = cached_export(load_model(MODEL))
    name = "mobilenet_v3_small.onnx"
    with (
        drawable(path, name=name, depth=2) as drawing,
        private_copy(drawing.path, drawing.name) as served,
        netron_server(served, "127.0.0.1", 0) as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(60_000)
            context.route("**/*", lambda route: _loopback_only(route, url))
            page = context.new_page()
            page.goto(url)
            accept = page.locator("#message-button", has_text="Accept")
            graph = page.locator("body.default svg#canvas g.node")
            accept.or_(graph).first.wait_for()
            if accept.is_visible():
                accept.press("Enter")
            graph.first.wait_for()
            assert page.title().endswith("mobilenet_v3_small.depth2.onnx")
            block = page.locator("g#node-name-features\\.4")
            block.locator("text", has_text="\u0192").click()  # Netron's "Show Function Definition"
            inner = page.locator("svg#canvas g.node", has_text="BatchNormalization")
            inner.first.wait_for()
            assert inner.count() == 3
            page.locator("#toolbar-path", has_text="features/4").wait_for()  # its breadcrumb
        finally:
            browser.close()


def test_a_huge_graph_is_drawn_collapsed(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(drawable_module, "LARGE_GRAPH_NODES", 30)
    path = tmp_path / "stack.onnx"
    onnx.save(residual_stack(20), path)  # 60 nodes in 20 blocks
    out = tmp_path / "stack.svg"
    result = cli("render", path, "-o", out, "--format", "json")
    assert result.code == 0, result.err
    assert "inspector: note: stack.onnx has 60 nodes, past 30" in result.err
    assert result.json()["nodes"] == 22  # 20 blocks, input and output
    full = cli("render", path, "-o", out, "--full", "--format", "json")
    assert full.json()["nodes"] == 62 and "note" not in full.err


@pytest.fixture(scope="module")
def drawn_diff(tmp_path_factory):
    """exercise_model authored vs optimized, drawn as SVG by the real command, and its JSON."""
    folder = tmp_path_factory.mktemp("diff")
    out = folder / "diff.svg"
    argv = ["diff", "exercise_model", "exercise_model", "--graph", "authored"]
    argv += ["--graph", "optimized", "-o", str(out), "--format", "json", "--structure-only"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 1
    return out, json.loads(stdout.getvalue())


def test_drawn_diff_colours_every_node_by_the_diff(drawn_diff):
    out, data = drawn_diff
    root = ElementTree.fromstring(out.read_text(encoding="utf-8"))
    nodes = _nodes(root)
    assert len(nodes) == data["sizes"]["nodes"]["b"] == 4  # Conv, Relu, Reshape, Gemm
    expected = data["node_colours"]
    for name, group in nodes.items():
        state = expected.get(name, "unchanged")
        assert group.get("data-diff") == state, name
        assert _header_fill(group) == COLOURS[state], name
    states = {group.get("data-diff") for group in nodes.values()}
    assert "removed-neighbour" in states and "unchanged" in states
    texts = _texts(root)
    assert "Conv" in texts and "Gemm" in texts and "BatchNormalization" not in texts
    assert "in A only, not drawn: BatchNormalization x1" in texts
    assert any(text.startswith("next to a node B lost (") for text in texts)
    assert data["drawing"]["path"] == str(out) and data["drawing"]["format"] == "svg"


def test_drawn_diff_legend_sits_above_the_graph(drawn_diff):
    out, _ = drawn_diff
    svg = out.read_text(encoding="utf-8")
    root = ElementTree.fromstring(svg)
    origin = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "origin")
    assert origin.get("transform").startswith("translate(0,")
    width, height = svg_size(svg)
    background = next(r for r in root.iter(f"{SVG}rect") if r.get("id") == "background")
    assert (float(background.get("width")), float(background.get("height"))) == (width, height)


def test_drawn_diff_as_png(cli, tmp_path, drawn_diff):
    svg_out, _ = drawn_diff
    png = tmp_path / "diff.png"
    argv = ["diff", "exercise_model", "exercise_model", "--graph", "authored"]
    result = cli(*argv, "--graph", "optimized", "-o", png, "--structure-only")
    assert result.code == 1, result.err
    assert result.out.rstrip().splitlines()[-1].startswith(f"wrote {png} (")
    width, height = png_size(png.read_bytes())
    svg_width, svg_height = svg_size(svg_out.read_text(encoding="utf-8"))
    assert (width, height) == (
        pytest.approx(2 * svg_width, abs=2),
        pytest.approx(2 * svg_height, abs=2),
    )
