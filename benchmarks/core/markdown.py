"""Markdown pipe tables, as every benchmark prints and writes them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def row(cells: Iterable[str]) -> str:
    """``| a | b |``."""
    return "| " + " | ".join(cells) + " |"


def table(header: Sequence[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """The header, its rule, and a line per row."""
    return [row(header), "|" + "---|" * len(header), *map(row, rows)]
