"""inspector verify: onnxruntime against PyTorch (or an ONNX file against golden data)."""

from __future__ import annotations

from .. import defaults
from ..errors import ExitStatus, InspectorError
from .options import (
    EXPORT_OPTIONS,
    MODEL_OPTIONS,
    add_cache_option,
    add_export_options,
    add_format_option,
    add_model_argument,
    add_model_options,
    emit,
    export_options,
    given_or_default,
    int_list,
    is_onnx_path,
    load,
    positive_int,
    refuse_options,
    tolerance,
)

ORT_OPT_LEVELS = ("disable", "basic", "all")  # as inspector.onnx.runtime's (no onnxruntime here)


def budget(text: str) -> dict:
    import argparse

    from ..onnx.tolerances import parse_budget

    try:
        return parse_budget(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def metric(text: str) -> str:
    import argparse

    from ..onnx.tolerances import parse_metric

    try:
        return parse_metric(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


NAME = "verify"
HELP = "prove that onnxruntime computes what PyTorch computes (PASSED/FAILED, exit 1 on a mismatch)"


def add_arguments(parser) -> None:
    add_model_argument(parser, onnx=True)
    add_model_options(parser)
    parser.add_argument(
        "--onnx",
        metavar="FILE.onnx",
        help="an exported file to check (default: export MODEL to a temporary file first)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="with FILE.onnx: check against model-zoo test data "
        "(DIR/test_data_set_N/input_K.pb, output_K.pb) without PyTorch",
    )
    parser.add_argument(
        "--atol",
        type=tolerance,
        action="append",
        metavar="[NAME=]A",
        help=f"absolute tolerance ({defaults.ATOL:g}); NAME=A for one output only, repeatable: "
        "--atol 1e-4 --atol boxes=1e-2",
    )
    parser.add_argument(
        "--rtol",
        type=tolerance,
        action="append",
        metavar="[NAME=]R",
        help=f"relative tolerance ({defaults.RTOL:g}), measured against the larger of the value "
        "and a hundredth of the output's largest value; NAME=R for one output only, repeatable",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        help=f"random inputs per batch size ({defaults.SEEDS})",
    )
    parser.add_argument(
        "--batch-sizes",
        type=int_list,
        metavar="1,3",
        help="batch sizes to run (default: 1 and one other than the export batch)",
    )
    parser.add_argument("--report", metavar="OUT.json", help="write the report as JSON")
    parser.add_argument(
        "--save-data",
        metavar="DIR",
        help="write inputs and PyTorch outputs as ONNX model-zoo test data",
    )
    parser.add_argument(
        "--localize",
        action="store_true",
        help="compare every module's output and name the root cause: the module whose output "
        "diverges while its inputs agree (its PyTorch path and type, its ONNX nodes)",
    )
    parser.add_argument(
        "--repro",
        metavar="DIR",
        help="with --localize: write that module's part of the graph as DIR/model.onnx and "
        "PyTorch's values as DIR/test_data_set_0, so 'inspector verify DIR/model.onnx --data DIR' "
        "reproduces the mismatch without PyTorch",
    )
    parser.add_argument(
        "--decode-steps",
        type=positive_int,
        metavar="N",
        help="a causal LM (transformers): export it with its cache as inputs and outputs, run the "
        "prompt and N greedy steps in PyTorch and onnxruntime, each fed its own cache, and "
        "compare every step's logits and cache and its greedy tokens",
    )
    parser.add_argument(
        "--budget",
        type=budget,
        metavar="cosine=C,sqnr=DB",
        help="fail (exit 1) an output whose figure falls short: cosine (similarity), sqnr "
        "(dB), pearson, topk (share of rows agreeing, with --metric topk=K), row_cosine (the "
        "smallest per-row cosine, with --metric cosine); int8 files default to "
        "cosine=0.99,sqnr=20",
    )
    parser.add_argument(
        "--metric",
        type=metric,
        action="append",
        default=[],
        metavar="topk=K|cosine",
        help="a task figure per output over its rows (all axes but the last): topk=K, the "
        "share of rows whose PyTorch top-1 class is among onnxruntime's top K (classifiers); "
        "cosine, the smallest per-row cosine similarity (embeddings); repeatable",
    )
    parser.add_argument(
        "--ort-opt",
        choices=ORT_OPT_LEVELS,
        default="all",
        help="onnxruntime's graph optimization level for the comparison (default: all); a "
        "failure is checked again at another level, to tell an optimization's error apart",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="ERR.svg|png",
        help="with --localize: draw the file with Netron, each node coloured by its module's "
        "divergence at its own scale, the root cause outlined, a legend above (needs Chromium)",
    )
    add_export_options(parser)
    add_cache_option(parser)
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..onnx.report import check_report_destination, save_report

    _check_outputs_apart(args)
    if args.report:
        check_report_destination(args.report)
    if args.save_data:
        from ..onnx.testdata import check_save_destination

        check_save_destination(args.save_data)
    if args.repro is not None and args.data is None and not is_onnx_path(args.model):
        from ..onnx.repro import check_repro_request

        check_repro_request(args.repro, args.localize)
    if args.output is not None:
        _check_drawing(args)
    if args.decode_steps is not None:
        report = _verify_decode(args)
    elif args.data is not None or is_onnx_path(args.model):
        report = _verify_data(args)
    else:
        from ..verification import verify

        options = export_options(args)  # checked here, before the model loads
        report = verify(
            load(args),
            onnx=args.onnx,
            export_options=options,
            atol=args.atol,
            rtol=args.rtol,
            seeds=given_or_default(args, "seeds"),
            batch_sizes=args.batch_sizes,
            localize=args.localize,
            repro=args.repro,
            save_data=args.save_data,
            use_cache=not args.no_cache,
            budget=args.budget,
            metrics=args.metric,
            ort_opt=args.ort_opt,
            draw=args.output,
        )
    if args.report:
        save_report(report, args.report)
    emit(report, args)
    if getattr(report, "drawing", None) is not None and args.format == "text":
        print(report.drawing, file=args.stdout)
    return ExitStatus.OK if report else ExitStatus.FAILED


def _check_outputs_apart(args) -> None:
    from ..util.files import check_outputs_apart, model_file

    outputs = {
        "--report": args.report,
        "--save-data": args.save_data,
        "--repro": args.repro,
        "-o": args.output,
    }
    inputs = {
        "MODEL": model_file(args.model),
        "--onnx": args.onnx,
        "--data": args.data,
        "--checkpoint": args.checkpoint,
        "--inputs": model_file(args.inputs),
    }
    check_outputs_apart(outputs, inputs)


def _check_drawing(args) -> None:
    """-o draws what --localize compared: refuse it without, and a bad path, before any work."""
    if not args.localize or args.data is not None or is_onnx_path(args.model):
        raise InspectorError(
            "-o draws the module outputs --localize compares: give a PyTorch MODEL and --localize"
        )
    from ..netron.render import check_output, find_chromium

    check_output(args.output)
    find_chromium()


def _verify_decode(args):
    """--decode-steps N: its own export (the cache in and out) and loop; the options that judge
    one forward's export do not apply."""
    from ..verification.decode import verify_decode

    alone = ("onnx", "data", "localize", "repro", "save_data")
    given = [name for name in alone if getattr(args, name) not in (None, False)]
    if given or is_onnx_path(args.model):
        what = f"--{given[0].replace('_', '-')}" if given else "an ONNX file"
        raise InspectorError(f"--decode-steps checks a PyTorch MODEL; it does not go with {what}")
    return verify_decode(
        load(args),
        args.decode_steps,
        atol=args.atol,
        rtol=args.rtol,
        opset=export_options(args).opset,
    )


def _verify_data(args):
    """FILE.onnx --data DIR: onnxruntime against golden data, with no PyTorch import."""
    if not is_onnx_path(args.model):
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
    for flag in ("onnx", "save_data", "localize", "repro", "output"):
        if getattr(args, flag):
            raise InspectorError(
                f"--{flag.replace('_', '-')} needs a PyTorch MODEL; it does not go with --data"
            )
    runs = (("--seeds", "seeds"), ("--batch-sizes", "batch_sizes"))
    reason = "applies to a PyTorch MODEL; it does not go with --data"
    refuse_options(args, MODEL_OPTIONS + EXPORT_OPTIONS + runs, reason)
    from ..onnx.golden import verify_data

    return verify_data(
        args.model,
        args.data,
        atol=args.atol,
        rtol=args.rtol,
        budget=args.budget,
        metrics=args.metric,
        ort_opt=args.ort_opt,
    )
