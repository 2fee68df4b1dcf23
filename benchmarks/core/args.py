"""Argument plumbing every benchmark shares: one-line refusals, argparse types, commands.

Each benchmark of ``python -m benchmarks`` is a module that is a
:class:`Benchmark`: it adds its flags to its own subparser and runs with
what they parsed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from pathlib import Path
from typing import NoReturn, Protocol


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, then exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class Benchmark(Protocol):
    """What the module of a subcommand of ``python -m benchmarks`` holds.

    Its docstring describes it in its ``--help``; ``main`` gets the parsed
    flags and its own parser (for refusals found after parsing) and returns
    the exit status.
    """

    SUMMARY: str  # one line, for the list of commands

    def add_arguments(self, cli: Parser) -> None: ...

    def main(self, options: argparse.Namespace, cli: Parser) -> int: ...


def positive_ints(text: str) -> tuple[int, ...]:
    """``10,100`` or ``64,1k,16k`` (k = 1024) as a tuple of positive integers."""
    values = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = 1024 if part.endswith("k") else 1
        try:
            value = int(part.removesuffix("k")) * scale
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1: {part!r}")
        values.append(value)
    return tuple(values)


def names_of(kind: str, known: Collection[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: a comma list of names, each one of ``known`` (``kind`` names them)."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(","))
        unknown = [name for name in names if name not in known]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {unknown[0]!r}; choose from {', '.join(known)}"
            )
        return names

    return parse


def whole_number(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (``why`` says why, if given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{why}: {text!r}")
        return value

    return parse


# A repeat count: one run has no range, so nothing could be ranked on it.
at_least_two = whole_number(2, " (a range needs two runs)")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_from_json(cli: Parser, what: str) -> None:
    """``--from-json FILE``: measure nothing, make ``what`` again from an earlier run's file."""
    cli.add_argument("--from-json", type=Path, metavar="FILE", help=f"measure nothing: {what}")
