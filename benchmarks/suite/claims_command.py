"""``python -m benchmarks claims``: the claims of the tutorial and of uvloop, measured.

The matrix's ``--claims`` as a command of its own: every claim, unless
``--claims NAMES`` picks some, each with its verdict, written as JSON,
Markdown and an HTML page (about 10 minutes). The matrix's other flags
(``--out``, ``--no-plots``, ...) apply.
"""

from __future__ import annotations

from ..core.args import Parser
from . import cli as matrix
from .claims import CLAIMS

SUMMARY = "the tutorial's and uvloop's claims, measured, with verdicts"


def add_arguments(cli: Parser) -> None:
    """The matrix's flags, with every claim asked for unless ``--claims`` names some."""
    matrix.add_arguments(cli)
    cli.set_defaults(claims=matrix.claim_names(",".join(CLAIMS)))


main = matrix.main
