"""inspector check-all: export and verify every registered model, or one CI shard of them."""

from __future__ import annotations

from ..errors import ExitStatus
from .options import add_format_option, emit

NAME = "check-all"
HELP = "export and verify every registered model"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--shard", metavar="I/N", help="check only shard I of N (1-based), for CI matrices"
    )
    parser.add_argument(
        "--pattern", metavar="GLOB", help="only models whose name matches, e.g. 'conv*'"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="export every model afresh instead of reusing unchanged cached exports",
    )
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..checkall import check_all, parse_shard, select_models

    shard = parse_shard(args.shard)
    names = select_models(args.pattern, shard)
    report = check_all(
        names, shard=shard, progress=args.format == "text", use_cache=not args.no_cache
    )
    emit(report, args)
    return ExitStatus.OK if report else ExitStatus.FAILED
