"""inspector render: draw a model's graph with Netron in headless Chromium, into PNG or SVG."""

from __future__ import annotations

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
    add_graph_option(parser)
    add_cache_option(parser)
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..netron.render import check_output, find_chromium, render

    check_output(args.output)  # fail fast, before an export
    find_chromium()
    with onnx_for(args) as path:
        emit(render(path, args.output, timeout=args.timeout), args)
    return ExitStatus.OK
