"""inspector diff: compare two models or ONNX files (structure, weights, outputs), and draw the diff."""

from __future__ import annotations

import argparse

from .. import defaults
from ..errors import ExitStatus, InspectorError
from .options import (
    EXPORT_OPTIONS,
    MODEL_HELP,
    MODEL_OPTIONS,
    add_cache_option,
    add_format_option,
    add_model_options,
    emit,
    is_onnx_path,
    load,
    non_negative_float,
    positive_int,
    refuse_options,
)

NAME = "diff"
HELP = (
    "compare two models or ONNX files: inputs and outputs, opset, ops, nodes per module, "
    "weights, and outputs on seeded inputs (exit 0 equal, 1 different)"
)
EPILOG = (
    "--graph and --exporter given once apply to both sides; given twice, the first is A's and "
    "the second B's (e.g. 'inspector diff mobilenet_v3_small mobilenet_v3_small --graph "
    "authored --graph optimized'). The model options apply to every MODEL side. -o draws B with "
    "Netron, each node coloured: added, next to a node B lost, changed, or unchanged. Exit "
    "status: 0 equal within --atol/--rtol, 1 different, 2 bad input."
)


def add_arguments(parser) -> None:
    parser.add_argument("a", metavar="A", help=f"MODEL or FILE.onnx; a MODEL is {MODEL_HELP}")
    parser.add_argument("b", metavar="B", help="MODEL or FILE.onnx, compared with A")
    add_model_options(parser)
    sides = parser.add_argument_group("export options (once: both sides; twice: A's, then B's)")
    sides.add_argument(
        "--graph",
        action="append",
        choices=defaults.GRAPHS,
        help=f"the graph a MODEL is exported as (default: {defaults.GRAPH})",
    )
    sides.add_argument(
        "--exporter",
        action="append",
        choices=defaults.EXPORTERS,
        help=f"the torch.onnx exporter for a MODEL (default: {defaults.EXPORTER})",
    )
    parser.add_argument(
        "--structure-only",
        action="store_true",
        help="compare the graphs and weights only; do not run the models",
    )
    parser.add_argument(
        "--atol",
        type=non_negative_float,
        default=defaults.ATOL,
        help=f"absolute tolerance for weights and outputs ({defaults.ATOL:g})",
    )
    parser.add_argument(
        "--rtol",
        type=non_negative_float,
        default=defaults.RTOL,
        help=f"relative tolerance for weights and outputs ({defaults.RTOL:g})",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.svg|OUT.png",
        help="draw B with its nodes coloured by the diff",
    )
    parser.add_argument(
        "--timeout",
        type=positive_int,
        default=int(defaults.RENDER_TIMEOUT),
        metavar="SECONDS",
        help=f"with -o: give up drawing after this long ({defaults.RENDER_TIMEOUT:g})",
    )
    add_cache_option(parser)
    add_format_option(parser, "text", "json", "markdown")


def run(args) -> ExitStatus:
    from ..diffing import onnx_files
    from ..onnx.diff import diff_models

    if args.output:
        from ..netron.render import check_output

        check_output(args.output)  # fail fast, before an export; the browser is looked for later
    side_a, side_b = _sides(args)
    with onnx_files(side_a, side_b, use_cache=not args.no_cache) as (path_a, path_b):
        result = diff_models(
            path_a,
            path_b,
            run=not args.structure_only,
            atol=args.atol,
            rtol=args.rtol,
            labels=(side_a.label(side_b), side_b.label(side_a)),
        )
        if args.output:
            result.drawing = _draw(result, path_b, args)
    emit(result, args)
    if result.drawing is not None and args.format == "text":
        print(result.drawing, file=args.stdout)
    return ExitStatus.OK if result else ExitStatus.FAILED


def _sides(args):
    """The two sides, a MODEL loaded once when both sides name it."""
    from ..diffing import Side

    graphs = _per_side(args.graph, "--graph", defaults.GRAPH)
    exporters = _per_side(args.exporter, "--exporter", defaults.EXPORTER)
    models = [spec for spec in (args.a, args.b) if not is_onnx_path(spec)]
    if not models:
        _refuse_model_options(args)
    loaded = {spec: load(argparse.Namespace(**{**vars(args), "model": spec})) for spec in models}
    sources = [spec if is_onnx_path(spec) else loaded[spec] for spec in (args.a, args.b)]
    return (
        Side(sources[0], graphs[0], exporters[0]),
        Side(sources[1], graphs[1], exporters[1]),
    )


def _per_side(values, option: str, default: str) -> tuple[str, str]:
    values = values or [default]
    if len(values) > 2:
        raise InspectorError(f"{option} given {len(values)} times: give it once, or twice (A, B)")
    return (values[0], values[-1])


def _refuse_model_options(args) -> None:
    """Two .onnx files: a model or export option would silently do nothing, so say so."""
    reason = "applies to a MODEL; A and B are both .onnx files"
    refuse_options(args, MODEL_OPTIONS + EXPORT_OPTIONS, reason)


def _draw(result, path_b, args):
    from ..netron.diff_drawing import draw_diff
    from ..netron.drawable import model_file_name

    return draw_diff(
        result, path_b, args.output, name=model_file_name(args.b), timeout=args.timeout
    )
