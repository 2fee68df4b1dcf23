"""The scenarios' figures as Markdown tables, one per scenario, a row per loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core import markdown
from .model import Column, Scenario

MISSING = "-"


def table(scenario: Scenario, runs: Sequence[dict[str, Any]]) -> str:
    """A heading, the server flags of each run, and the table of its figures."""
    lines = [f"## {scenario.name}", "", scenario.title + ".", ""]
    for run in runs:
        command = " ".join(["python -m aioecho serve --loop", run["loop"], *run["server_flags"]])
        lines.append(f"- {run['loop']}: `{command}`")
    headers = ["loop", *(column.header for column in scenario.columns)]
    lines += ["", *markdown.table(headers, [])]
    for run in runs:
        if run["status"] != "ok":
            cells = [f"**failed**: {run['reason']}", *[MISSING] * (len(headers) - 2)]
        else:
            cells = [cell(run["figures"], column) for column in scenario.columns]
        lines.append(markdown.row([run["loop"], *cells]))
    return "\n".join(lines) + "\n"


def cell(figures: dict[str, Any], column: Column) -> str:
    """One column's figure(s): ``a|b`` keys show both, ``a.b`` keys look inside."""
    return " / ".join(show(lookup(figures, key), column.style) for key in column.key.split("|"))


def lookup(figures: dict[str, Any], key: str) -> Any:
    value: Any = figures
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def show(value: Any, style: str) -> str:
    if value is None:
        return MISSING
    if isinstance(value, dict):
        return ", ".join(f"{reason}: {count}" for reason, count in value.items()) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if style == "rps":
        return f"{value:,.0f}"
    if style == "ms":
        return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
    if style == "float":
        return f"{value:.1f}"
    if style == "ratio":
        return f"{value:.3g}x"
    if style == "percent":
        return f"{value:.1%}"
    if style == "cores":
        return f"{value:.2f}"
    return str(value)
