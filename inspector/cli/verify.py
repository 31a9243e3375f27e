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
    int_list,
    is_onnx_path,
    load,
    positive_int,
    refuse_options,
    tolerance,
)

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
        default=defaults.SEEDS,
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
    add_export_options(parser)
    add_cache_option(parser)
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..onnx.report import check_report_destination, save_report

    if args.report:
        check_report_destination(args.report)
    if args.save_data:
        from ..onnx.testdata import check_save_destination

        check_save_destination(args.save_data)
    if args.repro is not None and args.data is None and not is_onnx_path(args.model):
        from ..onnx.repro import check_repro_request

        check_repro_request(args.repro, args.localize)
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
            seeds=args.seeds,
            batch_sizes=args.batch_sizes,
            localize=args.localize,
            repro=args.repro,
            save_data=args.save_data,
            use_cache=not args.no_cache,
        )
    if args.report:
        save_report(report, args.report)
    emit(report, args)
    return ExitStatus.OK if report else ExitStatus.FAILED


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
    for flag in ("onnx", "save_data", "localize", "repro"):
        if getattr(args, flag):
            raise InspectorError(
                f"--{flag.replace('_', '-')} needs a PyTorch MODEL; it does not go with --data"
            )
    runs = (("--seeds", "seeds"), ("--batch-sizes", "batch_sizes"))
    reason = "applies to a PyTorch MODEL; it does not go with --data"
    refuse_options(args, MODEL_OPTIONS + EXPORT_OPTIONS + runs, reason)
    from ..onnx.golden import verify_data

    return verify_data(args.model, args.data, atol=args.atol, rtol=args.rtol)
