"""inspector export: MODEL -> a checked ONNX file, written atomically."""

from __future__ import annotations

from ..errors import ExitStatus
from .options import (
    add_export_options,
    add_format_option,
    add_model_argument,
    add_model_options,
    emit,
    export_options,
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

    options = export_options(args)  # checked here, before the model loads
    loaded = load(args)
    output = args.output or default_output(loaded)
    result = export_onnx(loaded, output, options=options, verbose=args.verbose)
    emit(result, args)
    return ExitStatus.OK
