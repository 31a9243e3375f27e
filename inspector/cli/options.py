"""What several commands share: argument types, option groups, loading MODEL, printing a result.

Only the standard library at module level: `inspector --help` must answer without torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from .. import defaults
from ..errors import InspectorError

MODEL_HELP = (
    "a registry name (see 'inspector list'), package.module:attr, or path/to/file.py:attr "
    "(attr: an nn.Module subclass or a function returning one)"
)


# --- argument types: a bad value is a usage error that names the value ------------------------


def shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,3,224,224") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be a positive integer")
    return dims


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers like 1,8") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers like 1,8")
    return values


def positive_int(text: str) -> int:
    value = int_list(text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value[0]


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def port_number(text: str) -> int:
    """A TCP port, checked while parsing: before an export that would be wasted on a bad port."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a number from 1 to 65535")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def tolerance(text: str) -> tuple[str | None, float]:
    """--atol/--rtol: VALUE for every output, or NAME=VALUE for one."""
    from ..onnx.tolerances import parse_tolerance

    try:
        return parse_tolerance(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --- option groups ------------------------------------------------------------------------------


def add_model_argument(parser, onnx: bool = False) -> None:
    parser.add_argument("model", metavar="MODEL|FILE.onnx" if onnx else "MODEL", help=MODEL_HELP)


def add_model_options(parser) -> None:
    opts = parser.add_argument_group(
        "model options",
        "example inputs, one way: --input per input, --input-shape (float32), or --inputs",
    )
    opts.add_argument(
        "--input",
        action="append",
        metavar="[NAME=]SHAPE[:DTYPE][:LOW..HIGH]",
        help="one input of forward, in order or by NAME (a keyword argument), e.g. "
        "--input input_ids=2x16:int64:0..1000 --input attention_mask=2x16:int64:1..2, or "
        "--input 1x3x224x224; DTYPE float32 (default), float16, bfloat16, float64, int64, "
        "int32, int8, uint8, bool; integers drawn from LOW..HIGH, end excluded (default 0..2)",
    )
    opts.add_argument(
        "--input-shape",
        type=shape,
        action="append",
        metavar="1,3,224,224",
        help="float32 shorthand: an example input shape, once per forward argument "
        "(default: the registry entry's example inputs)",
    )
    opts.add_argument(
        "--inputs",
        metavar="MODULE:FN",
        help="a function (package.module:fn or file.py:fn) returning example inputs: a tensor, "
        "a tuple (positional), a dict (keyword) or (tuple, dict); an input may itself be a "
        "dict, list or namedtuple, and () calls a forward that takes nothing",
    )
    opts.add_argument(
        "--kwargs",
        metavar="JSON",
        help="constructor arguments as a JSON object, e.g. '{\"arg1\": 1}'",
    )
    opts.add_argument(
        "-k",
        "--kwarg",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="one constructor argument; VALUE is parsed as JSON when it parses",
    )
    opts.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="weights to load: a .pt/.pth state_dict (weights_only=True) or a .safetensors file",
    )


def add_graph_option(parser) -> None:
    parser.add_argument(
        "--graph",
        choices=defaults.GRAPHS,
        help="authored: one node per layer as written (Conv, BatchNormalization, "
        f"...); optimized: the exporter's fusions (default: {defaults.GRAPH})",
    )


def add_export_options(parser) -> None:
    """The options that change the exported file (export, and the commands that export first)."""
    opts = parser.add_argument_group("export options")
    add_graph_option(opts)
    opts.add_argument("--opset", type=positive_int, help=f"ONNX opset ({defaults.OPSET})")
    opts.add_argument(
        "--static-batch",
        action="store_true",
        help="keep the example batch size fixed instead of a dynamic axis",
    )
    opts.add_argument(
        "--exporter",
        choices=defaults.EXPORTERS,
        help=f"torch.onnx exporter (default: {defaults.EXPORTER})",
    )
    opts.add_argument(
        "--dynamic-dim",
        action="append",
        default=[],
        metavar="NAME.AXIS=LABEL",
        help="one more dynamic axis besides the batch, e.g. input_ids.1=sequence (axes with one "
        "LABEL share one size); the file is run at other sizes before it is called dynamic",
    )
    opts.add_argument(
        "--precision",
        choices=defaults.PRECISIONS,
        help="fp16/bf16: the float32 export converted by onnxruntime's float16 converter "
        "(inputs and outputs stay float32, Casts at the edges); int8: onnxruntime's "
        "quantize_static (QDQ, calibrated on seeded inputs) (default: fp32)",
    )


def add_cache_option(parser) -> None:
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="export afresh instead of reusing the export cache ($INSPECTOR_CACHE_DIR, default "
        "~/.cache/inspector)",
    )


def add_format_option(parser, *choices: str) -> None:
    choices = choices or ("text", "json")
    parser.add_argument(
        "--format",
        choices=choices,
        default="text",
        help="output format (default: text); json prints one JSON document on stdout and "
        "nothing else there",
    )


# --- running ------------------------------------------------------------------------------------


def load(args, inputs_required: bool = True, meta: bool | None = False):
    """The MODEL and its options -> a LoadedModel (imports torch)."""
    from ..loading import load_model, parse_kwargs

    return load_model(
        args.model,
        inputs=args.input,
        input_shapes=args.input_shape,
        inputs_factory=args.inputs,
        kwargs=parse_kwargs(args.kwargs, args.kwarg),
        checkpoint=args.checkpoint,
        inputs_required=inputs_required,
        meta=meta,
    )


def export_options(args):
    """The export options a command was given, as export/cache take them (checked here, once)."""
    from ..export.exporter import make_export_options

    return make_export_options(
        graph=given_or_default(args, "graph"),
        exporter=given_or_default(args, "exporter"),
        opset=given_or_default(args, "opset"),
        dynamic_batch=not args.static_batch,
        dynamic_dims=args.dynamic_dim,
        precision=given_or_default(args, "precision"),
    )


# The options whose parser default is None, so that one given at its default value is told from
# one not given (`verify FILE.onnx --opset 18` is refused as `--opset 7` is); their defaults, which
# `--help` names, are filled in here.
LATE_DEFAULTS = {
    "graph": defaults.GRAPH,
    "exporter": defaults.EXPORTER,
    "opset": defaults.OPSET,
    "precision": defaults.PRECISION,
    "seeds": defaults.SEEDS,
}


def given_or_default(args, dest: str):
    """An option of LATE_DEFAULTS as given, or its default when it was not."""
    value = getattr(args, dest, None)
    return LATE_DEFAULTS[dest] if value is None else value


def is_onnx_path(spec: str) -> bool:
    return spec.lower().endswith(".onnx")


# (flag, dest) of the options that only mean something for a PyTorch MODEL.
MODEL_OPTIONS = (
    ("--input", "input"),
    ("--input-shape", "input_shape"),
    ("--inputs", "inputs"),
    ("--kwargs", "kwargs"),
    ("-k", "kwarg"),
    ("--checkpoint", "checkpoint"),
)
EXPORT_OPTIONS = (
    ("--graph", "graph"),
    ("--exporter", "exporter"),
    ("--opset", "opset"),
    ("--static-batch", "static_batch"),
    ("--dynamic-dim", "dynamic_dim"),
    ("--precision", "precision"),
    ("--no-cache", "no_cache"),
)


def refuse_options(args, options, reason: str) -> None:
    """An option that would silently do nothing here is a user error naming it (exit 2), in
    every command alike: `summary FILE.onnx --checkpoint x.pt`, `verify FILE.onnx --opset 7`."""
    for flag, dest in options:
        if getattr(args, dest, None) not in (None, False, [], ()):  # given, even at its default
            raise InspectorError(f"{flag} {reason}")


def refuse_model_options_for_a_file(args) -> None:
    """MODEL|FILE.onnx commands: the model and export options do nothing for a file."""
    if is_onnx_path(args.model):
        reason = f"applies to a MODEL; {args.model} is an ONNX file"
        refuse_options(args, MODEL_OPTIONS + EXPORT_OPTIONS, reason)


def emit(result, args) -> None:
    """Print a result in the format asked for, on the stdout the command started with.

    While a JSON command runs, `main` points sys.stdout at stderr so that a model's own prints
    cannot corrupt the document; `args.stdout` is the real one.
    """
    if getattr(args, "pid", None) not in (None, os.getpid()):
        os._exit(0)  # a process the model's code forked: only the command's own one prints
    stream = getattr(args, "stdout", None) or sys.stdout
    fmt = getattr(args, "format", "text")
    if fmt == "json":
        text = json.dumps(result.to_dict(), indent=2)
    elif fmt == "markdown":
        text = result.to_markdown()
    else:
        text = str(result)
    if fmt != "json":  # the last guard: nothing unprintable from a file or a model gets through
        from ..util.text import printable

        text = "\n".join(map(printable, text.split("\n")))
    print(text, file=stream, flush=True)


@contextlib.contextmanager
def onnx_for(args):
    """An .onnx path: the file given (the command checks it) or MODEL, exported (or cached)."""
    if is_onnx_path(args.model):
        yield args.model
        return
    from ..export import exported_model
    from ..export.exporter import make_export_options

    options = make_export_options(graph=given_or_default(args, "graph"))
    with exported_model(load(args), options=options, use_cache=not args.no_cache) as path:
        yield path
