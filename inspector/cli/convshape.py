"""inspector conv-shape: the lecture's output-size formula, computed or solved for stride/padding."""

from __future__ import annotations

from typing import Any

from ..errors import ExitStatus
from .options import add_format_option, emit

NAME = "conv-shape"
HELP = (
    "compute a convolution's output size, or solve for stride and padding "
    "(each size is one integer or an H,W pair)"
)


def add_arguments(parser) -> None:
    parser.add_argument("--input", required=True, metavar="I|H,W", help="input size")
    parser.add_argument("--kernel", required=True, metavar="K|KH,KW", help="kernel size")
    parser.add_argument(
        "--stride",
        metavar="S|SH,SW",
        help="stride (default: 1; with --output: searched unless given)",
    )
    parser.add_argument(
        "--padding",
        metavar="P|PH,PW",
        help="padding (default: 0; with --output: "
        "searched from 0 to dilation*(kernel-1) unless given)",
    )
    parser.add_argument("--dilation", metavar="D|DH,DW", help="dilation (default: 1)")
    parser.add_argument(
        "--output",
        metavar="O|H,W",
        help="wanted output size: list every stride and padding that give it, simplest first",
    )
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..convshape import conv_output_size, parse_size, solve_conv

    def size(option, default=None):
        text = getattr(args, option.lstrip("-"))
        return default if text is None else parse_size(text, option)

    sizes = {
        "input": size("--input"),
        "kernel": size("--kernel"),
        "dilation": size("--dilation", 1),
    }
    result: Any
    if args.output is None:
        result = conv_output_size(**sizes, stride=size("--stride", 1), padding=size("--padding", 0))
    else:
        result = solve_conv(
            **sizes, output=size("--output"), stride=size("--stride"), padding=size("--padding")
        )
    emit(result, args)
    return ExitStatus.OK
