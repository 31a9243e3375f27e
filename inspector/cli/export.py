"""inspector export: MODEL -> a checked ONNX file, written atomically."""

from __future__ import annotations

from ..errors import ExitStatus
from .options import (
    add_export_options,
    add_format_option,
    add_model_argument,
    add_model_options,
    emit,
    load,
)

NAME = "export"
HELP = "export a model to ONNX and check the written file"


def add_arguments(parser) -> None:
    add_model_argument(parser)
    add_model_options(parser)
    parser.add_argument(
        "-o", "--output", metavar="OUT.onnx", help="where to write (default: MODEL.onnx)"
    )
    add_export_options(parser)
    parser.add_argument("--verbose", action="store_true", help="show the exporter's own messages")
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..export import default_output, export_onnx

    loaded = load(args)
    result = export_onnx(
        loaded,
        args.output or default_output(loaded),
        opset=args.opset,
        graph=args.graph,
        exporter=args.exporter,
        dynamic_batch=not args.static_batch,
        dynamic_dims=args.dynamic_dim,
        verbose=args.verbose,
        precision=args.precision,
    )
    emit(result, args)
    return ExitStatus.OK
