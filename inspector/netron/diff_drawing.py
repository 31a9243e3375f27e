"""A drawn diff: model B as Netron draws it, each node's header coloured by what the diff found
(added, beside a node A had and B lost, changed, unchanged), with a legend above the graph.

Netron's own SVG is post-processed: it marks every node `<g id="node-name-NAME" class="node ...">`,
so a node is found by its ONNX name and its header's fill replaced. Nothing of Netron is patched.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ..defaults import RENDER_TIMEOUT
from ..onnx.diff.graph_index import unique_node_names
from ..onnx.files import check_onnx_file_once, vouch_for
from .render import RenderResult, render

SVG = "http://www.w3.org/2000/svg"
COLOURS = {
    "added": "rgb(46, 125, 50)",  # green
    "removed-neighbour": "rgb(198, 40, 40)",  # red
    "changed": "rgb(230, 120, 0)",  # orange
    "unchanged": "rgb(150, 150, 150)",  # grey: white labels stay readable on it
}
LEGEND_WORDS = {
    "added": "added in B",
    "removed-neighbour": "next to a node B lost",
    "changed": "changed (weights, attributes or inputs)",
    "unchanged": "unchanged",
}
FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Ubuntu, 'DejaVu Sans', sans-serif"
LEGEND_ROW = 16  # px per legend line
NODE_ID = "node-name-"


def draw_diff(
    result, model_b_path, output, *, name: str | None = None, timeout: float = RENDER_TIMEOUT
) -> RenderResult:
    """Draw B (the file `result` compared as B) into `output` (.svg or .png), coloured by `result`."""
    path = check_onnx_file_once(model_b_path)  # render checks it again: this makes that free
    with _uniquely_named(path) as path:
        return render(
            path, output, timeout=timeout, name=name, decorate=lambda svg: colour_svg(svg, result)
        )


def colour_svg(svg: str, result) -> str:
    """Netron's SVG of B with each node's header in its diff colour, and a legend on top."""
    ElementTree.register_namespace("", SVG)
    root = ElementTree.fromstring(svg)
    counts: Counter = Counter()
    for group in root.iter(f"{{{SVG}}}g"):
        node_id = group.get("id", "")
        if node_id.startswith(NODE_ID) and "graph-node" in group.get("class", "").split():
            name = node_id[len(NODE_ID) :]
            state = result.node_state(name)
            _paint(group, state, also_changed="changed" in result.node_states.get(name, ()))
            counts[state] += 1
    _add_legend(root, result, counts)
    return ElementTree.tostring(root, encoding="unicode")


def _paint(group, state: str, also_changed: bool) -> None:
    group.set("class", f"{group.get('class', '')} diff-{state}".strip())
    group.set("data-diff", state)
    header = next((g for g in group if "node-item" in g.get("class", "").split()), None)
    background = header.find(f"{{{SVG}}}path") if header is not None else None
    if background is not None:
        background.set("style", _with_fill(background.get("style", ""), COLOURS[state]))
    if also_changed and state != "changed":
        # Beside a lost node and changed itself (a Conv with BatchNormalization folded in): the
        # fill says where the lost node was, a thick border that the node changed too.
        border = next(
            (p for p in group.iter(f"{{{SVG}}}path") if "node-border" in p.get("class", "")), None
        )
        if border is not None:
            border.set("style", f"stroke: {COLOURS['changed']}; fill: none; stroke-width: 3px;")


def _with_fill(style: str, colour: str) -> str:
    if re.search(r"(^|;)\s*fill\s*:", style):
        return re.sub(r"(^|;)(\s*)fill\s*:[^;]*", rf"\1\2fill: {colour}", style)
    return f"{style.rstrip('; ')}; fill: {colour};".lstrip("; ")


def _add_legend(root, result, counts: Counter) -> None:
    """Make room above the graph and draw the legend there."""
    swatch = "fill: {}; stroke: rgb(51, 51, 51); stroke-width: 1px;"
    lines = [
        (swatch.format(COLOURS[state]) if state else None, text)
        for state, text in _legend_lines(result, counts)
    ]
    draw_legend(root, lines)


def draw_legend(root, lines: list[tuple[str | None, str]]) -> None:
    """Lines of text above the graph, each after a swatch drawn in its style (None: no swatch);
    the graph moves down to make room."""
    height = LEGEND_ROW * len(lines) + 12
    _shift_down(root, height, width=max(len(text) for _, text in lines) * 6.5 + 40)
    legend = ElementTree.SubElement(root, f"{{{SVG}}}g", {"id": "inspector-legend"})
    text_style = f"font-family: {FONT}; font-size: 11px; fill: rgb(0, 0, 0);"
    for row, (style, text) in enumerate(lines):
        y = 8 + row * LEGEND_ROW
        if style:
            swatch = {"x": "8", "y": str(y), "width": "22", "height": "12", "rx": "3"}
            swatch["style"] = style
            ElementTree.SubElement(legend, f"{{{SVG}}}rect", swatch)
        place = {"x": "36" if style else "8", "y": str(y + 10), "style": text_style}
        ElementTree.SubElement(legend, f"{{{SVG}}}text", place).text = text


def _legend_lines(result, counts: Counter) -> list[tuple[str | None, str]]:
    """(colour state or None, text) per line: the two sides, each colour, what only A has."""
    lines: list[tuple[str | None, str]] = [(None, f"A: {result.a}   B (drawn): {result.b}")]
    lines += [(state, f"{LEGEND_WORDS[state]} ({counts[state]})") for state in COLOURS]
    removed = Counter(change.op for change in result.nodes if change.kind == "removed")
    if removed:
        ops = ", ".join(f"{op} x{n}" for op, n in removed.most_common())
        lines.append((None, f"in A only, not drawn: {ops}"))
    return lines


def _shift_down(root, height: float, width: float) -> None:
    new_width = max(float(root.get("width", "0")), width)
    new_height = float(root.get("height", "0")) + height
    root.set("width", f"{new_width:g}")
    root.set("height", f"{new_height:g}")
    for child in list(root):
        if child.get("id") == "background":
            child.set("width", f"{new_width:g}")
            child.set("height", f"{new_height:g}")
        else:
            child.set("transform", f"translate(0,{height:g}) {child.get('transform', '')}".strip())


@contextlib.contextmanager
def _uniquely_named(path: Path) -> Iterator[Path]:
    """The (checked) file itself when every node has a name of its own (Netron's SVG ids are node names),
    else a copy whose nameless or duplicate nodes are named as the diff named them."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    names = unique_node_names(graph.node)
    if all(node.name == name for node, name in zip(graph.node, names, strict=True)):
        yield path
        return
    model = onnx.load(str(path))
    for node, name in zip(model.graph.node, names, strict=True):
        node.name = name
    folder = Path(tempfile.mkdtemp(prefix="inspector-diff-"))
    try:
        copy = folder / path.name
        copy.write_bytes(model.SerializeToString())
        vouch_for(copy)  # only names changed in a file that passed the checks
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)
