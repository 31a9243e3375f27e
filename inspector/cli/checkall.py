"""inspector check-all: export and verify every registered model, or one CI shard of them."""

from __future__ import annotations

from ..errors import ExitStatus
from .options import add_format_option, emit, positive_int

NAME = "check-all"
HELP = "export and verify every registered model (built-in, or your zoo's with --models)"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--models",
        metavar="FILE.py|package.module",
        help="check exactly the models this file or module registers with "
        "@inspector.register_model (default: the built-in ones)",
    )
    parser.add_argument(
        "--shard", metavar="I/N", help="check only shard I of N (1-based), for CI matrices"
    )
    parser.add_argument(
        "--pattern", metavar="GLOB", help="only models whose name matches, e.g. 'conv*'"
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="check N models at a time in N worker processes, the cores split between them "
        "(default: 1, in this process)",
    )
    parser.add_argument(
        "--junit-xml",
        metavar="OUT.xml",
        help="also write a JUnit XML report: one testcase per model, a failure's diff table",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="export every model afresh instead of reusing unchanged cached exports",
    )
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..checkall import check_all, import_zoo, parse_shard, select_models
    from ..util.files import check_writable_destination, write_atomically

    shard = parse_shard(args.shard)
    if args.junit_xml:
        check_writable_destination(args.junit_xml, "--junit-xml")
    zoo = import_zoo(args.models) if args.models else None
    names = select_models(args.pattern, shard, among=zoo)
    report = check_all(
        names,
        shard=shard,
        progress=args.format == "text",
        use_cache=not args.no_cache,
        jobs=args.jobs,
        zoo=args.models,
    )
    if args.junit_xml:
        from ..checkall.junit import junit_xml

        write_atomically(args.junit_xml, junit_xml(report), f"--junit-xml {args.junit_xml}")
    emit(report, args)
    return ExitStatus.OK if report else ExitStatus.FAILED
