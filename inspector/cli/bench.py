"""inspector bench: PyTorch eager against onnxruntime on the CPU, same inputs, same threads."""

from __future__ import annotations

from .. import defaults
from ..errors import ExitStatus
from .options import (
    add_cache_option,
    add_format_option,
    add_model_argument,
    add_model_options,
    emit,
    int_list,
    load,
    non_negative_int,
    positive_int,
)

NAME = "bench"
HELP = "time PyTorch eager against onnxruntime on the CPU"


def add_arguments(parser) -> None:
    add_model_argument(parser)
    add_model_options(parser)
    sizes = ",".join(map(str, defaults.BENCH_BATCH_SIZES))
    parser.add_argument(
        "--batch-sizes",
        type=int_list,
        default=list(defaults.BENCH_BATCH_SIZES),
        metavar=sizes,
        help=f"batch sizes to time (default: {sizes})",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="threads for both runtimes (default: the machine's cores)",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=defaults.BENCH_RUNS,
        help=f"timed runs per case ({defaults.BENCH_RUNS}); a run shorter than 1 ms repeats "
        "the call to last 1 ms",
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        default=defaults.BENCH_WARMUP,
        help=f"untimed runs first ({defaults.BENCH_WARMUP})",
    )
    add_cache_option(parser)
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..bench import benchmark

    report = benchmark(
        load(args),
        batch_sizes=args.batch_sizes,
        threads=args.threads,
        runs=args.runs,
        warmup=args.warmup,
        use_cache=not args.no_cache,
        progress=True,
    )
    if args.format == "text" and args.stdout.isatty():
        from rich.console import Console

        Console(file=args.stdout).print(report)
    else:
        emit(report, args)
    return ExitStatus.OK
