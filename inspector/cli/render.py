"""inspector render: draw a model's graph with Netron in headless Chromium, into PNG or SVG."""

from __future__ import annotations

import sys

from ..defaults import RENDER_TIMEOUT
from ..errors import ExitStatus
from .options import (
    add_cache_option,
    add_format_option,
    add_graph_option,
    add_model_argument,
    add_model_options,
    emit,
    onnx_for,
    positive_int,
    refuse_model_options_for_a_file,
)

NAME = "render"
HELP = "draw a model's graph with Netron into a PNG or SVG file"


def add_arguments(parser) -> None:
    add_model_argument(parser, onnx=True)
    add_model_options(parser)
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT.png|OUT.svg", help="image to write"
    )
    parser.add_argument(
        "--timeout",
        type=positive_int,
        default=int(RENDER_TIMEOUT),
        metavar="SECONDS",
        help=f"give up when Chromium and Netron have not drawn the graph by then "
        f"({RENDER_TIMEOUT:g})",
    )
    add_view_options(parser)
    add_graph_option(parser)
    add_cache_option(parser)
    add_format_option(parser)


def add_view_options(parser) -> None:
    """--module, --depth and --full: what part of the graph to draw, and how (render and view)."""
    from ..defaults import LARGE_GRAPH_NODES

    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="PATH",
        help="draw only the nodes of this PyTorch module (e.g. features.4) and the modules "
        "inside it, cut out as a valid ONNX graph; repeatable",
    )
    parser.add_argument(
        "--depth",
        type=positive_int,
        metavar="N",
        help="draw every module N levels below the root as one node (an ONNX function that "
        "Netron opens from the ƒ on its box)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"draw every node even past {LARGE_GRAPH_NODES:,} nodes, where the graph is "
        "otherwise drawn collapsed to a depth that fits",
    )


def drawable_for(args, path):
    """What to draw for `path` (the file of args.model), with a note on stderr for each change."""
    from ..netron.drawable import drawable, model_file_name

    return drawable(
        path,
        name=model_file_name(args.model),
        modules=args.module,
        depth=args.depth,
        full=args.full,
    )


def print_notes(drawing) -> None:
    for note in drawing.notes:
        print(f"inspector: note: {note}", file=sys.stderr, flush=True)


def run(args) -> ExitStatus:
    from ..netron.render import check_output, render

    # The input first, then the browser (render looks for it): a machine without Chromium still
    # says what is wrong with a model, a file or -o.
    refuse_model_options_for_a_file(args)
    check_output(args.output)  # fail fast, before an export
    with onnx_for(args) as path, drawable_for(args, path) as drawing:
        print_notes(drawing)
        emit(render(drawing.path, args.output, timeout=args.timeout, name=drawing.name), args)
    return ExitStatus.OK
