"""inspector view: serve a model's graph with Netron on loopback until Ctrl-C."""

from __future__ import annotations

from ..defaults import LOOPBACK
from ..errors import ExitStatus
from .options import (
    add_cache_option,
    add_format_option,
    add_graph_option,
    add_model_argument,
    add_model_options,
    onnx_for,
    port_number,
    refuse_model_options_for_a_file,
)
from .render import add_view_options, drawable_for, print_notes

NAME = "view"
HELP = "show a model's graph in Netron (served on 127.0.0.1)"
EPILOG = (
    "Ctrl-C stops the server, removes its temporary copy of the model, and exits 0 (SIGTERM and "
    "SIGHUP too, exiting 143 and 129). Only GET and HEAD requests whose Host header names the "
    "server are answered (a defence against DNS rebinding)."
)


def add_arguments(parser) -> None:
    add_model_argument(parser, onnx=True)
    add_model_options(parser)
    parser.add_argument("--port", type=port_number, help="port to serve on (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help=f"address to serve on (default: {LOOPBACK}; others need --allow-remote)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (the model becomes readable by others)",
    )
    add_view_options(parser)
    add_graph_option(parser)
    add_cache_option(parser)
    add_format_option(parser)


def run(args) -> ExitStatus:
    import json

    from ..netron.serve import check_host, view

    refuse_model_options_for_a_file(args)
    check_host(args.host, args.allow_remote)  # before an export that would be wasted
    announce = None
    if args.format == "json":

        def announce(url, name):
            print(json.dumps({"model": name, "url": url}), file=args.stdout, flush=True)

    with onnx_for(args) as path, drawable_for(args, path) as drawing:
        print_notes(drawing)
        view(
            drawing.path,
            host=args.host,
            port=args.port,
            browser=not args.no_browser,
            allow_remote=args.allow_remote,
            announce=announce,
            name=drawing.name,
        )
    return ExitStatus.OK
