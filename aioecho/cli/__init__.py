"""The command line: ``serve`` (the default), ``client`` and ``bench``.

One module per command (:mod:`.serve`, :mod:`.client`, :mod:`.bench`), and
what their parsers share (:mod:`.parsing`, :mod:`.environment`). Every
misuse ends in one line on stderr and exit code 2, a missing extra
included.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from ..extras import MissingExtraError
from ..process.early import release_stop_signals
from . import bench, client, serve
from .parsing import Parser, subcommands

__all__ = ["build_parser", "main", "main_entry", "parsers"]

COMMANDS = ("serve", "client", "bench")
HELP_FLAGS = ("-h", "--help", "--version")
EPILOG = """\
Without a command, aioecho serves: `aioecho --port 9000` is `aioecho serve --port 9000`.
See `aioecho COMMAND --help` for each command's flags."""


def build_parser() -> Parser:
    """The whole command line: ``aioecho [serve|client|bench] FLAGS``."""
    parser = Parser(prog="aioecho", description="Uppercase TCP echo service.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"aioecho {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{serve,client,bench}")
    for command in (serve, client, bench):
        command.add_parser(commands)
    return parser


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, fully built: ``serve``, ``client``, ``bench``, in that order.

    What ``aioecho COMMAND --help`` prints comes from these; the reference of
    the command line is generated from them. They ignore the environment.
    """
    return dict(subcommands(build_parser()).choices)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in HELP_FLAGS):
        args.insert(0, "serve")  # every serve flag works without the word serve
    parser = build_parser()
    chosen: Parser | None = subcommands(parser).choices.get(args[0])
    if args[0] == "serve" and chosen is not None:
        serve.read_environment(chosen)
    options = parser.parse_args(args)
    if options.command != "serve":
        release_stop_signals()  # only a service stops on them gracefully
    try:
        code: int = options.run(options)
    except MissingExtraError as exc:
        options.parser.fail(str(exc))
    return code


def main_entry(*_: Any) -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
