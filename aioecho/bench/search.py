"""The saturation search (``--find-max-rate P99_MS``): the highest open-loop
rate the target sustains with p99 under a bound and every request answered.

Steps double the rate from ``--rate`` (default 1,000 msg/s) until one
fails, then bisect between the last rate that passed and the first that
failed until they are within 5% of each other, as tcpkali's ``-r @latency``
does. A step passes when the run is ``ok`` (nothing timed out, lost or
wrong), its p99 is within the bound, and the schedule did not fall behind.
Every step is kept in the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .config import BenchConfig
from .result import BenchResult

FIRST_RATE = 1000.0
# Steps in all: enough to double from 1,000 to 16 million and bisect 4 times.
MAX_STEPS = 18
# Stop bisecting when the last pass and the first failure are this close.
PRECISION = 0.05
# Below this, halving further says nothing useful about a server.
FLOOR_RATE = 10.0
# An open-loop step that sent fewer than this share of its due messages
# did not run at its rate.
BEHIND_LIMIT = 0.03

Measure = Callable[[BenchConfig], BenchResult]


def find_max_rate(
    config: BenchConfig, measure: Measure, *, stopped: Callable[[], bool]
) -> BenchResult:
    """Run the steps; the result of the best passing step (or the last step)
    with ``max_rate`` (``None`` if no step passed) and ``steps``."""
    assert config.find_max_rate is not None
    bound_us = config.find_max_rate * 1000
    steps: list[dict[str, Any]] = []
    passing: float | None = None
    failing: float | None = None
    best: BenchResult | None = None
    last: BenchResult | None = None
    rate: float | None = config.rate or FIRST_RATE
    while rate is not None and len(steps) < MAX_STEPS:
        step = dataclasses.replace(
            config, rate=rate, duration=config.time_limit, find_max_rate=None
        )
        last = measure(step)
        why = failure(last, bound_us)
        steps.append(describe_step(rate, last, why))
        if stopped():
            break
        if why is None:
            passing, best = rate, last
        else:
            failing = rate
        rate = next_rate(passing, failing)
    assert last is not None
    return dataclasses.replace(best or last, max_rate=passing, steps=steps)


def failure(result: BenchResult, bound_us: float) -> str | None:
    """Why a step does not count as sustained, or ``None`` if it does."""
    if not result.messages:
        return "nothing measured"
    problems = {
        "timed out": result.timed_out,
        "connections lost": result.errors,
        "wrong replies": result.mismatches,
        "failed to connect": result.connections - result.connected,
    }
    if any(problems.values()):
        return ", ".join(f"{count:,} {name}" for name, count in problems.items() if count)
    p99 = result.latency_us["p99"]
    if p99 is None or p99 > bound_us:
        return f"p99 {p99:,} µs over {bound_us:,.0f} µs"
    behind = result.behind
    if behind is not None and behind > BEHIND_LIMIT:
        return f"{behind:.1%} of due messages unsent"
    return None


def next_rate(passing: float | None, failing: float | None) -> float | None:
    """The next rate to try, or ``None`` when the search is done."""
    if failing is None:
        assert passing is not None
        return passing * 2
    if passing is None:
        lower = failing / 2
        return lower if lower >= FLOOR_RATE else None
    if failing <= passing * (1 + PRECISION):
        return None
    return _round((passing + failing) / 2)


def describe_step(rate: float, result: BenchResult, why: str | None) -> dict[str, Any]:
    """One step, for the JSON and the table."""
    return {
        "rate": rate,
        "sent_rate": result.sent_rate,
        "rps": result.rps,
        "p50_us": result.latency_us["p50"],
        "p99_us": result.latency_us["p99"],
        "timed_out": result.timed_out,
        "errors": result.errors,
        "mismatches": result.mismatches,
        "behind": result.behind,
        "client_limits": result.client_limits,
        "passed": why is None,
        "why": why,
    }


def _round(rate: float) -> float:
    """Three significant digits: rates that read well and differ by > 0.1%."""
    return float(f"{rate:.3g}")
