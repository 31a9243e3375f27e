"""inspector summary: torchinfo's table for a model, or the interface and ops of an ONNX file."""

from __future__ import annotations

import argparse

from .. import defaults
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
    parser.add_argument(
        "--columns",
        type=_names(defaults.SUMMARY_COLUMNS),
        default=defaults.SUMMARY_DEFAULT_COLUMNS,
        metavar="COL,..",
        help="the table's columns, torchinfo's col_names: "
        f"{', '.join(defaults.SUMMARY_COLUMNS)} "
        f"(default: {','.join(defaults.SUMMARY_DEFAULT_COLUMNS)})",
    )
    parser.add_argument(
        "--row-settings",
        type=_names(defaults.SUMMARY_ROW_SETTINGS),
        default=defaults.SUMMARY_DEFAULT_ROW_SETTINGS,
        metavar="SETTING,..",
        help="how layer rows read, torchinfo's row_settings: "
        f"{', '.join(defaults.SUMMARY_ROW_SETTINGS)} "
        f"(default: {','.join(defaults.SUMMARY_DEFAULT_ROW_SETTINGS)})",
    )
    parser.add_argument(
        "--mode",
        choices=defaults.SUMMARY_MODES,
        default="eval",
        help="run forward in eval (default) or train mode; the model's flags and BatchNorm's "
        "running statistics come back as they were",
    )
    parser.add_argument(
        "--meta",
        action="store_true",
        help="build the model on PyTorch's meta device (shapes without storage): parameters, "
        "shapes and mult-adds of a model too large to allocate; done without asking when its "
        "weights would take over half the available memory",
    )
    add_format_option(parser, "text", "json", "markdown")


def _names(known: tuple[str, ...]):
    """A comma-separated list of names from `known`, checked while parsing."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [name for name in names if name not in known]
        if not names or unknown:
            wrong = f"unknown {unknown[0]!r}" if unknown else "empty"
            raise argparse.ArgumentTypeError(f"{text!r}: {wrong}; choose from {', '.join(known)}")
        return names

    return parse


def run(args) -> ExitStatus:
    refuse_model_options_for_a_file(args)
    if is_onnx_path(args.model):
        from ..onnx.summary import summarize_onnx

        emit(summarize_onnx(args.model), args)
    else:
        from ..summary import summarize

        summary = summarize(
            load(args, inputs_required=False, meta=True if args.meta else None),
            depth=args.depth,
            col_names=args.columns,
            row_settings=args.row_settings,
            mode=args.mode,
        )
        emit(summary, args)
    return ExitStatus.OK
