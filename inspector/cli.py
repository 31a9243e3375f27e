"""The `inspector` command line: one parser, one small function per command.

Only the standard library is imported at module level, so `inspector --help` and usage errors answer
at once; torch, onnx and onnxruntime are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import traceback

from .errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    InspectorError,
    forget_interrupts,
    note_interrupt,
    was_interrupted,
)

MODEL_HELP = (
    "a registry name (see 'inspector list'), package.module:attr, or path/to/file.py:attr "
    "(attr: an nn.Module subclass or a function returning one)"
)

EPILOG = """\
examples:
  inspector list
  inspector summary exercise_model
  inspector summary my_models.py:Net --input-shape 1,3,32,32 --checkpoint net.pt
  inspector export mobilenet_v3_small -o mnv3.onnx
  inspector verify exercise_model
  inspector verify mnv3.onnx --data golden/
  inspector check-all --format json
  inspector view mobilenet_v3_small
  inspector render exercise_model -o exercise_model.png
  inspector bench exercise_model --batch-sizes 1,8
  inspector conv-shape --input 128 --kernel 3 --output 64

exit codes: 0 success, 1 a check failed, 2 user or input error, 130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other user error."""

    def error(self, message):
        message = " ".join(message.split())  # an argument holding a newline must not add a line
        sys.stderr.write(f"inspector: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,3,224,224") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be a positive integer")
    return dims


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers like 1,8") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers like 1,8")
    return values


def _positive_int(text: str) -> int:
    value = _int_list(text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value[0]


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    return common


def _model_options() -> argparse.ArgumentParser:
    group = argparse.ArgumentParser(add_help=False)
    opts = group.add_argument_group("model options")
    opts.add_argument(
        "--input-shape",
        type=_shape,
        action="append",
        metavar="1,3,224,224",
        help="example input shape, once per forward argument "
        "(default: the registry entry's example shape)",
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
    return group


def _format_option(parser, *choices: str) -> None:
    parser.add_argument(
        "--format", choices=choices, default="text", help="output format (default: text)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="inspector",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Summarize, export, verify and view PyTorch models.",
    )
    parser.add_argument("--version", action="version", version=f"inspector {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    common, model = _common_options(), _model_options()

    def command(name, func, help, parents=(common,)):
        p = sub.add_parser(name, help=help, description=help, parents=list(parents))
        p.set_defaults(func=func)
        return p

    p = command("list", cmd_list, "list the registered models with their example input shapes")
    _format_option(p, "text", "json")

    p = command(
        "summary",
        cmd_summary,
        "print a torchinfo summary of a model, or of an ONNX file",
        parents=(common, model),
    )
    p.add_argument("model", metavar="MODEL|FILE.onnx", help=MODEL_HELP)
    p.add_argument(
        "--depth", type=_positive_int, default=3, help="how deep to list nested layers (default: 3)"
    )
    _format_option(p, "text", "json", "markdown")

    p = command(
        "export",
        cmd_export,
        "export a model to ONNX and check the written file",
        parents=(common, model),
    )
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "-o", "--output", metavar="OUT.onnx", help="where to write (default: MODEL.onnx)"
    )
    _export_options(p)
    p.add_argument("--verbose", action="store_true", help="show the exporter's own messages")

    p = command(
        "verify",
        cmd_verify,
        "prove that onnxruntime computes what PyTorch computes (PASSED/FAILED, exit 1 on "
        "a mismatch)",
        parents=(common, model),
    )
    p.add_argument("model", metavar="MODEL|FILE.onnx", help=MODEL_HELP)
    p.add_argument(
        "--onnx",
        metavar="FILE.onnx",
        help="an exported file to check (default: export MODEL to a temporary file first)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="with FILE.onnx: check against model-zoo test data "
        "(DIR/test_data_set_N/input_K.pb, output_K.pb) without PyTorch",
    )
    p.add_argument(
        "--atol", type=_non_negative_float, default=1e-4, help="absolute tolerance (1e-4)"
    )
    p.add_argument(
        "--rtol", type=_non_negative_float, default=1e-3, help="relative tolerance (1e-3)"
    )
    p.add_argument(
        "--seeds", type=_positive_int, default=3, help="random inputs per batch size (3)"
    )
    p.add_argument(
        "--batch-sizes",
        type=_int_list,
        metavar="1,3",
        help="batch sizes to run (default: 1 and one other than the export batch)",
    )
    p.add_argument("--report", metavar="OUT.json", help="write the report as JSON")
    p.add_argument(
        "--save-data",
        metavar="DIR",
        help="write inputs and PyTorch outputs as ONNX model-zoo test data",
    )
    p.add_argument(
        "--localize",
        action="store_true",
        help="compare every layer's output and name the first that diverges",
    )
    _export_options(p, output_only=False)

    p = command(
        "view",
        cmd_view,
        "show a model's graph in Netron (served on 127.0.0.1)",
        parents=(common, model),
    )
    p.add_argument("model", metavar="MODEL|FILE.onnx", help=MODEL_HELP)
    p.add_argument("--port", type=_positive_int, help="port to serve on (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default: 127.0.0.1; others need --allow-remote)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (the model becomes readable by others)",
    )
    _export_options(p, output_only=False)
    p.epilog = "Ctrl-C stops the server, removes its temporary copy of the model, and exits 0."

    p = command(
        "render",
        cmd_render,
        "draw a model's graph with Netron into a PNG or SVG file",
        parents=(common, model),
    )
    p.add_argument("model", metavar="MODEL|FILE.onnx", help=MODEL_HELP)
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT.png|OUT.svg", help="image to write"
    )
    p.add_argument(
        "--timeout",
        type=_positive_int,
        default=120,
        metavar="SECONDS",
        help="give up when Chromium and Netron have not drawn the graph by then (120)",
    )
    _export_options(p, output_only=False)

    p = command(
        "bench",
        cmd_bench,
        "time PyTorch eager against onnxruntime on the CPU",
        parents=(common, model),
    )
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--batch-sizes",
        type=_int_list,
        default=[1, 8],
        metavar="1,8",
        help="batch sizes to time (default: 1,8)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        help="threads for both runtimes (default: the machine's cores)",
    )
    p.add_argument(
        "--runs",
        type=_positive_int,
        default=20,
        help="timed runs per case (20); a run shorter than 1 ms repeats the call to last 1 ms",
    )
    p.add_argument("--warmup", type=_positive_int, default=3, help="untimed runs first (3)")
    p.add_argument(
        "--no-cache", action="store_true", help="export afresh instead of reusing the export cache"
    )
    _format_option(p, "text", "json")

    p = command("check-all", cmd_check_all, "export and verify every registered model")
    p.add_argument(
        "--shard", metavar="I/N", help="check only shard I of N (1-based), for CI matrices"
    )
    p.add_argument("--pattern", metavar="GLOB", help="only models whose name matches, e.g. 'conv*'")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="export every model afresh instead of reusing unchanged cached exports",
    )
    _format_option(p, "text", "json")

    p = command(
        "conv-shape",
        cmd_conv_shape,
        "compute a convolution's output size, or solve for stride and padding "
        "(each size is one integer or an H,W pair)",
    )
    p.add_argument("--input", required=True, metavar="I|H,W", help="input size")
    p.add_argument("--kernel", required=True, metavar="K|KH,KW", help="kernel size")
    p.add_argument(
        "--stride",
        metavar="S|SH,SW",
        help="stride (default: 1; with --output: searched unless given)",
    )
    p.add_argument(
        "--padding",
        metavar="P|PH,PW",
        help="padding (default: 0; with --output: "
        "searched from 0 to dilation*(kernel-1) unless given)",
    )
    p.add_argument("--dilation", metavar="D|DH,DW", help="dilation (default: 1)")
    p.add_argument(
        "--output",
        metavar="O|H,W",
        help="wanted output size: list every stride and padding that give it, simplest first",
    )
    _format_option(p, "text", "json")
    return parser


def _export_options(parser, output_only: bool = True) -> None:
    parser.add_argument(
        "--graph",
        choices=("authored", "optimized"),
        default="authored",
        help="authored: one node per layer as written (Conv, BatchNormalization, "
        "...); optimized: the exporter's fusions (default: authored)",
    )
    if output_only:
        parser.add_argument("--opset", type=_positive_int, default=18, help="ONNX opset (18)")
        parser.add_argument(
            "--static-batch",
            action="store_true",
            help="keep the example batch size fixed instead of a dynamic axis",
        )
        parser.add_argument(
            "--exporter",
            choices=("dynamo", "torchscript"),
            default="dynamo",
            help="torch.onnx exporter (default: dynamo)",
        )
    # export always exports afresh; the others reuse the export cache unless told not to.
    cache_help = (
        argparse.SUPPRESS
        if output_only
        else (
            "export afresh instead of reusing the export cache ($INSPECTOR_CACHE_DIR, default "
            "~/.cache/inspector)"
        )
    )
    parser.add_argument("--no-cache", action="store_true", help=cache_help)


def _version() -> str:
    from . import __version__

    return __version__


def _load(args):
    """The MODEL and its options -> a LoadedModel (imports torch)."""
    from .loading import load_model, parse_kwargs

    return load_model(
        args.model,
        input_shapes=args.input_shape,
        kwargs=parse_kwargs(args.kwargs, args.kwarg),
        checkpoint=args.checkpoint,
    )


def _emit(result, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(result.to_dict(), indent=2))
    elif fmt == "markdown":
        print(result.to_markdown())
    else:
        print(result)


def _is_onnx_path(spec: str) -> bool:
    return spec.lower().endswith(".onnx")


def cmd_list(args) -> int:
    from .listing import registry_listing

    _emit(registry_listing(), args.format)
    return EXIT_OK


def cmd_summary(args) -> int:
    if _is_onnx_path(args.model):
        from .summary import summarize_onnx

        _emit(summarize_onnx(args.model), args.format)
        return EXIT_OK
    from .summary import summarize

    _emit(summarize(_load(args), depth=args.depth), args.format)
    return EXIT_OK


def cmd_export(args) -> int:
    from .export import default_output, export_onnx

    loaded = _load(args)
    output = args.output or default_output(loaded)
    result = export_onnx(
        loaded,
        output,
        opset=args.opset,
        graph=args.graph,
        exporter=args.exporter,
        dynamic_batch=not args.static_batch,
        verbose=args.verbose,
    )
    print(result)
    return EXIT_OK


def cmd_verify(args) -> int:
    if args.report:
        from .verify import check_report_destination

        check_report_destination(args.report)
    if args.save_data:
        from .testdata import check_save_destination

        check_save_destination(args.save_data)
    if args.data is not None or _is_onnx_path(args.model):
        report = _verify_data(args)
    else:
        from .verify import verify

        report = verify(
            _load(args),
            onnx=args.onnx,
            graph=args.graph,
            atol=args.atol,
            rtol=args.rtol,
            seeds=args.seeds,
            batch_sizes=args.batch_sizes,
            localize=args.localize,
            save_data=args.save_data,
            use_cache=not args.no_cache,
        )
    print(report)
    if args.report:
        from .verify import save_report

        save_report(report, args.report)
    return EXIT_OK if report else EXIT_FAILED


def _verify_data(args):
    """FILE.onnx --data DIR: onnxruntime against golden data, with no PyTorch import."""
    if not _is_onnx_path(args.model):
        raise InspectorError(
            f"--data checks an ONNX file: write 'inspector verify FILE.onnx "
            f"--data {args.data}' (got {args.model!r})"
        )
    if args.data is None:
        raise InspectorError(
            f"{args.model}: give --data DIR to check an ONNX file against "
            "golden data, or verify its PyTorch model with "
            f"'inspector verify MODEL --onnx {args.model}'"
        )
    for flag in ("onnx", "save_data", "localize"):
        if getattr(args, flag):
            raise InspectorError(
                f"--{flag.replace('_', '-')} needs a PyTorch MODEL; it does not go with --data"
            )
    from .verify import verify_data

    return verify_data(args.model, args.data, atol=args.atol, rtol=args.rtol)


@contextlib.contextmanager
def _onnx_for(args):
    """An .onnx path: the file given (view and render check it) or MODEL, exported."""
    if _is_onnx_path(args.model):
        yield args.model
        return
    from .export import exported_model

    with exported_model(_load(args), graph=args.graph, use_cache=not args.no_cache) as path:
        yield path


def cmd_view(args) -> int:
    from .view import check_host, view

    check_host(args.host, args.allow_remote)  # before an export that would be wasted
    with _onnx_for(args) as path:
        view(
            path,
            host=args.host,
            port=args.port,
            browser=not args.no_browser,
            allow_remote=args.allow_remote,
        )
    return EXIT_OK


def cmd_render(args) -> int:
    from .render import check_output, find_chromium, render

    check_output(args.output)  # fail fast, before an export
    find_chromium()
    with _onnx_for(args) as path:
        print(render(path, args.output, timeout=args.timeout))
    return EXIT_OK


def cmd_bench(args) -> int:
    from .bench import benchmark

    report = benchmark(
        _load(args),
        batch_sizes=args.batch_sizes,
        threads=args.threads,
        runs=args.runs,
        warmup=args.warmup,
        use_cache=not args.no_cache,
        progress=True,
    )
    if args.format == "text" and sys.stdout.isatty():
        from rich import print as rich_print

        rich_print(report)
    else:
        _emit(report, args.format)
    return EXIT_OK


def cmd_check_all(args) -> int:
    from .checkall import check_all, parse_shard, select_models

    shard = parse_shard(args.shard)
    names = select_models(args.pattern, shard)
    report = check_all(
        names, shard=shard, progress=args.format == "text", use_cache=not args.no_cache
    )
    _emit(report, args.format)
    return EXIT_OK if report else EXIT_FAILED


def cmd_conv_shape(args) -> int:
    from .convshape import conv_output_size, parse_size, solve_conv

    def size(option, default=None):
        text = getattr(args, option.lstrip("-"))
        return default if text is None else parse_size(text, option)

    sizes = {
        "input": size("--input"),
        "kernel": size("--kernel"),
        "dilation": size("--dilation", 1),
    }
    if args.output is None:
        result = conv_output_size(**sizes, stride=size("--stride", 1), padding=size("--padding", 0))
    else:
        result = solve_conv(
            **sizes, output=size("--output"), stride=size("--stride"), padding=size("--padding")
        )
    _emit(result, args.format)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code (tests call this in-process)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    with _interrupts_remembered():
        code = _run_command(args)
    # A failure after Ctrl-C is the interrupt's doing; a command that ends on Ctrl-C by design
    # (view) and returns 0 keeps its code.
    if was_interrupted() and code not in (EXIT_OK, EXIT_INTERRUPTED):
        return _fail(args, "inspector: interrupted", EXIT_INTERRUPTED)
    return code


@contextlib.contextmanager
def _interrupts_remembered():
    forget_interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    previous = signal.signal(signal.SIGINT, note_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_command(args) -> int:
    try:
        return args.func(args)
    except InspectorError as error:
        return _fail(args, f"inspector: error: {error}", error.exit_code)
    except KeyboardInterrupt:
        return _fail(args, "inspector: interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # `inspector ... | head`: the reader left, which is not our error
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # a bug in inspector or in a library: still one line, not a crash
        first_line = (str(error).strip().splitlines() or [""])[0]
        message = f"inspector: internal error: {type(error).__name__}: {first_line}"
        return _fail(args, message + " (run with --debug for the traceback)", EXIT_FAILED)


def _fail(args, message: str, code: int) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
