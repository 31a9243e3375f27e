"""inspector list: the registered models and their example inputs."""

from __future__ import annotations

from ..errors import ExitStatus
from .options import add_format_option, emit

NAME = "list"
HELP = "list the registered models with their example input shapes"


def add_arguments(parser) -> None:
    add_format_option(parser)


def run(args) -> ExitStatus:
    from ..listing import registry_listing

    emit(registry_listing(), args)
    return ExitStatus.OK
