"""inspector summary: torchinfo's table for a model, or the interface and ops of an ONNX file."""

from __future__ import annotations

from ..defaults import SUMMARY_DEPTH
from ..errors import ExitStatus
from .options import (
    add_format_option,
    add_model_argument,
    add_model_options,
    emit,
    is_onnx_path,
    load,
    positive_int,
    refuse_model_options_for_a_file,
)

NAME = "summary"
HELP = "print a torchinfo summary of a model, or of an ONNX file"


def add_arguments(parser) -> None:
    add_model_argument(parser, onnx=True)
    add_model_options(parser)
    parser.add_argument(
        "--depth",
        type=positive_int,
        default=SUMMARY_DEPTH,
        help=f"how deep to list nested layers (default: {SUMMARY_DEPTH})",
    )
    add_format_option(parser, "text", "json", "markdown")


def run(args) -> ExitStatus:
    refuse_model_options_for_a_file(args)
    if is_onnx_path(args.model):
        from ..onnx.summary import summarize_onnx

        emit(summarize_onnx(args.model), args)
    else:
        from ..summary import summarize

        emit(summarize(load(args), depth=args.depth), args)
    return ExitStatus.OK
