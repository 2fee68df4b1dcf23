"""Gates for CI: ``--fail-if 'p99>5ms'`` and ``--baseline FILE --max-regression 10%``.

A gate reads one figure of a result (a run's, or the medians of repeated
runs) and fails the command (exit 1) when it crosses its limit. Latency
figures take durations (``150us``, ``5ms``, ``1s``); the others plain numbers.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..durations import parse_duration
from .config import BenchConfigError
from .histogram import SUMMARY_KEYS

US_PER_S = 1_000_000
# The figures a gate can read, besides the latency percentiles (µs).
COUNTS = ("rps", "errors", "timed_out", "mismatches", "unsent", "client_cpu_us_per_rt")
FIGURES = (*SUMMARY_KEYS, *COUNTS)
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_GATE = re.compile(r"\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*(\S+)\s*")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d*)?)\s*%?\s*")

Figures = Mapping[str, float | None]


@dataclass(frozen=True)
class Gate:
    """``figure`` compared with ``limit``: the run fails when the comparison holds."""

    text: str
    figure: str
    comparison: str
    limit: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        """``p99>5ms``, ``rps<10000``, ``errors>0``; BenchConfigError says what is wrong."""
        match = _GATE.fullmatch(text)
        if match is None:
            raise BenchConfigError(
                f"--fail-if {text!r}: write FIGURE OP VALUE, like 'p99>5ms' or 'rps<10000'"
            )
        figure, comparison, value = match.groups()
        if figure not in FIGURES:
            raise BenchConfigError(
                f"--fail-if {text!r}: {figure} is not one of {', '.join(FIGURES)}"
            )
        try:
            limit = parse_duration(value) * US_PER_S if figure in SUMMARY_KEYS else float(value)
        except ValueError as exc:
            raise BenchConfigError(f"--fail-if {text!r}: {exc}") from None
        return cls(text.strip(), figure, comparison, limit)

    def failure(self, figures: Figures) -> str | None:
        """Why the gate fails on ``figures``, or ``None`` if it holds."""
        value = figures.get(self.figure)
        if value is None:
            return f"{self.text}: {self.figure} was not measured"
        if COMPARISONS[self.comparison](value, self.limit):
            return f"{self.text}: {self.figure} was {_show(self.figure, value)}"
        return None


def parse_regression(text: str) -> float:
    """``10%`` or ``10`` as the fraction 0.1."""
    match = _PERCENT.fullmatch(text)
    if match is None:
        raise BenchConfigError(f"--max-regression {text!r}: write a percentage, like 10%")
    return float(match.group(1)) / 100


def figures_of(document: Mapping[str, Any]) -> dict[str, float | None]:
    """The figures gates read, from a result's JSON (a run's, or repeated runs')."""
    source = document.get("summary", document)
    figures: dict[str, float | None] = dict(source["latency_us"])
    for name in COUNTS:
        figures[name] = source.get(name)
    return figures


def load_baseline(path: str) -> dict[str, float | None]:
    """The figures of a result saved with ``--json``."""
    try:
        return figures_of(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise BenchConfigError(f"--baseline {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BenchConfigError(f"--baseline {path}: not a result of bench --json") from None


def regressions(figures: Figures, baseline: Figures, allowed: float) -> list[str]:
    """Throughput down, or p99 up, by more than ``allowed`` against ``baseline``."""
    found = []
    checks = (("rps", -1), ("p99", +1))  # which way is worse
    for name, worse in checks:
        now, before = figures.get(name), baseline.get(name)
        if not now or not before:
            continue
        change = (now - before) / before
        if change * worse > allowed:
            found.append(
                f"{name} {_show(name, before)} -> {_show(name, now)} "
                f"({change:+.1%}, more than the allowed {allowed:.0%})"
            )
    return found


def _show(figure: str, value: float) -> str:
    if figure in SUMMARY_KEYS:
        return f"{value / 1000:,.3g} ms"
    return f"{value:,.6g}"
