"""`verify --localize -o ERR.svg|png`: the verified file as Netron draws it, each node's header
coloured by how far its module's output departs from PyTorch at that module's own scale (its
largest error over its largest value), the root cause's nodes outlined, and a legend above.

The painting and legend are the diff drawing's (diff_drawing.py): Netron's SVG, post-processed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter

from ..defaults import RENDER_TIMEOUT
from ..onnx.files import check_onnx_file_once
from .diff_drawing import NODE_ID, SVG, _uniquely_named, _with_fill, draw_legend
from .render import RenderResult, render

# (upper bound of the scaled error, colour, words), from agreeing to far off
BANDS = (
    (1e-6, "rgb(150, 150, 150)", "agrees: error under 1e-6 of its scale"),
    (1e-4, "rgb(46, 125, 50)", "1e-6 to 1e-4 of its scale"),
    (1e-2, "rgb(230, 160, 0)", "1e-4 to 1e-2 of its scale"),
    (float("inf"), "rgb(198, 40, 40)", "over 1e-2 of its scale"),
)
ROOT_OUTLINE = "stroke: rgb(21, 101, 192); fill: none; stroke-width: 4px;"


def draw_divergence(check, onnx_path, output, *, timeout: float = RENDER_TIMEOUT) -> RenderResult:
    """Draw `onnx_path` into `output` coloured by `check` (a localize.ModuleCheck)."""
    path = check_onnx_file_once(onnx_path)
    with _uniquely_named(path) as path:
        return render(path, output, timeout=timeout, decorate=lambda svg: colour_svg(svg, check))


def band(error: float) -> int:
    return next(i for i, (bound, _, _) in enumerate(BANDS) if error < bound)


def colour_svg(svg: str, check) -> str:
    ElementTree.register_namespace("", SVG)
    root = ElementTree.fromstring(svg)
    cause = check.root_cause.layer if check.root_cause is not None else None
    counts: Counter = Counter()
    for group in root.iter(f"{{{SVG}}}g"):
        node_id = group.get("id", "")
        if not node_id.startswith(NODE_ID) or "graph-node" not in group.get("class", "").split():
            continue
        module = check.node_modules.get(node_id[len(NODE_ID) :])
        if module is None or module not in check.errors:
            continue
        index = band(check.errors[module])
        counts[index] += 1
        group.set("data-divergence", f"{check.errors[module]:.3g}")
        header = next((g for g in group if "node-item" in g.get("class", "").split()), None)
        background = header.find(f"{{{SVG}}}path") if header is not None else None
        if background is not None:
            background.set("style", _with_fill(background.get("style", ""), BANDS[index][1]))
        if module == cause:
            group.set("class", f"{group.get('class', '')} root-cause")
            border = next(
                (p for p in group.iter(f"{{{SVG}}}path") if "node-border" in p.get("class", "")),
                None,
            )
            if border is not None:
                border.set("style", ROOT_OUTLINE)
    _legend(root, check, counts, cause)
    return ElementTree.tostring(root, encoding="unicode")


def _legend(root, check, counts: Counter, cause: str | None) -> None:
    lines: list[tuple[str | None, str]] = [
        (None, f"each node coloured by its module's divergence, on {check.run}")
    ]
    lines += [
        (colour, f"{words} ({counts[i]} nodes)") for i, (_, colour, words) in enumerate(BANDS)
    ]
    root_text = f"root cause: {cause}" if cause else "root cause: none, every module agrees"
    lines.append(("outline", root_text))
    draw_legend(root, [(_swatch(colour), text) for colour, text in lines])


def _swatch(colour: str | None) -> str | None:
    if colour == "outline":
        return ROOT_OUTLINE.replace("4px", "2px")
    return colour and f"fill: {colour}; stroke: rgb(51, 51, 51); stroke-width: 1px;"
