"""``python -m benchmarks COMMAND [FLAGS]``: every benchmark of aioecho, one subcommand each.

Run from the repository root (or with it on PYTHONPATH); the servers the
benchmarks start run as modules of this package from there too.
"""

from __future__ import annotations

from collections.abc import Sequence

from .core.args import Command, Parser
from .scenarios.cli import ABUSE
from .speed.cli import SPEED
from .suite.cli import MATRIX

PROG = "python -m benchmarks"
COMMANDS: tuple[Command, ...] = (MATRIX, SPEED, ABUSE)


def parser() -> Parser:
    """The command line: a subparser per benchmark, each with that benchmark's flags."""
    cli = Parser(prog=PROG, description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.summary, description=command.description
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run, parser=sub)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    status: int = options.run(options, options.parser)
    return status
