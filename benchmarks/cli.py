"""``python -m benchmarks COMMAND [FLAGS]``: every benchmark of aioecho, one subcommand each.

Run from the repository root (or with it on PYTHONPATH); the servers the
benchmarks start find this package the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from .core.args import Benchmark, Parser
from .scenarios import cli as abuse
from .speed import cli as speed
from .suite import claims_command as claims
from .suite import cli as matrix

PROG = "python -m benchmarks"
COMMANDS: dict[str, Benchmark] = {
    "matrix": matrix,
    "claims": claims,
    "speed": speed,
    "abuse": abuse,
}


def parser() -> Parser:
    """The command line: a subparser per benchmark, each with that benchmark's flags."""
    cli = Parser(prog=PROG, description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, benchmark in COMMANDS.items():
        sub = commands.add_parser(name, help=benchmark.SUMMARY, description=benchmark.__doc__)
        benchmark.add_arguments(sub)
        sub.set_defaults(main=benchmark.main, parser=sub)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    status: int = options.main(options, options.parser)
    return status
