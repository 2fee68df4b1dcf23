"""The saturation search (``--find-max-rate P99``): the highest open-loop
rate the target sustains with p99 under a bound and every request answered.

First the floor: one step at a low rate measures what the harness itself
adds on this machine; a bound below that floor is refused, since no rate
could pass it. Then steps double the rate until one does not pass, and
bisect between the last rate that passed and the first that did not until
they are within 5% of each other, as tcpkali's ``-r @latency`` does. The
last pass and the first failure are then measured again: one run per rate
can pass by luck.

A step is judged three ways:

- **pass**: nothing timed out, lost or wrong, every due message was sent,
  p99 within the bound, and the latency did not climb second by second (a
  queue that grows through a short step would fail a longer one);
- **fail**: the server fell short;
- **inconclusive**: it fell short while the client was the limit (its CPU
  saturated, or its own send lag or hiccups took a quarter of the bound):
  such a step says nothing about the server, and bounds the search from
  above like a failure without being called one.

Every step is kept in the result, with the bracket [last pass, first
failure or inconclusive step].
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

from .config import BenchConfig
from .result import BEHIND_LIMIT, SATURATED_CPU, BenchResult

FIRST_RATE = 1000.0
# The floor is measured at this rate, or the asked first rate if lower.
FLOOR_PROBE_RATE = 200.0
# Steps in all: enough to double from 1,000 to 16 million, bisect 4 times
# and repeat the two ends of the bracket.
MAX_STEPS = 20
# Stop bisecting when the last pass and the first failure are this close.
PRECISION = 0.05
# Below this, halving further says nothing useful about a server.
FLOOR_RATE = 10.0
# The client is the limit when its own send lag or hiccups (p99) take this
# share of the bound.
CLIENT_SHARE = 0.25
# A step's latency climbs when each second's p50 exceeds the one before and
# the last is this many times the first, by at least this share of the bound.
CLIMB_FACTOR = 1.5
CLIMB_SHARE = 0.1

Verdict = Literal["pass", "fail", "inconclusive"]
Measure = Callable[[BenchConfig], BenchResult]


class SearchRefused(ValueError):
    """The asked bound is below what the harness can measure here."""


@dataclasses.dataclass
class Search:
    """What the steps so far say: each rate's verdicts."""

    verdicts: dict[float, list[Verdict]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )

    @property
    def top(self) -> float | None:
        """The lowest rate that did not pass (failed, or was inconclusive)."""
        return min(
            (rate for rate, seen in self.verdicts.items() if _fell_short(seen)), default=None
        )

    @property
    def passing(self) -> float | None:
        """The highest rate below :attr:`top` where every run passed."""
        top = self.top
        return max(
            (
                rate
                for rate, seen in self.verdicts.items()
                if not _fell_short(seen) and (top is None or rate < top)
            ),
            default=None,
        )

    @property
    def client_bound(self) -> bool:
        """Whether the client, not a server failure, is what bounds the search."""
        top = self.top
        return top is not None and "fail" not in self.verdicts[top]

    def next_rate(self) -> float | None:
        """The next rate to measure, or ``None`` when the search is done."""
        passing, top = self.passing, self.top
        bisected = next_rate(passing, top)
        if bisected is not None:
            return bisected
        # Bracketed: repeat each end once before believing it.
        for rate in (passing, top):
            if rate is not None and len(self.verdicts[rate]) < 2:
                return rate
        return None


def find_max_rate(
    config: BenchConfig, measure: Measure, *, stopped: Callable[[], bool]
) -> BenchResult:
    """Run the steps; the result of the best passing step (or the last step)
    with ``max_rate`` (``None`` if no step passed), ``steps`` and ``bracket``.

    Raises :class:`SearchRefused` when the floor is above the bound.
    """
    assert config.find_max_rate is not None
    bound_us = config.find_max_rate * 1e6
    search = Search()
    steps: list[dict[str, Any]] = []
    best: dict[float, BenchResult] = {}
    last: BenchResult | None = None
    first = config.rate or FIRST_RATE
    rate: float | None = min(first, FLOOR_PROBE_RATE)
    while rate is not None and len(steps) < MAX_STEPS:
        step = dataclasses.replace(
            config, rate=rate, duration=config.time_limit, find_max_rate=None
        )
        last = measure(step)
        verdict, why = judge(last, bound_us)
        steps.append(describe_step(rate, last, verdict, why))
        if not steps[1:]:
            refuse_below_floor(last, bound_us)
        search.verdicts[rate].append(verdict)
        if verdict == "pass":
            best[rate] = last
        if stopped():
            break
        floor_passed = len(steps) == 1 and verdict == "pass"
        rate = first if floor_passed and first > rate else search.next_rate()
    assert last is not None
    passing = search.passing
    return dataclasses.replace(
        best.get(passing, last) if passing is not None else last,
        max_rate=passing,
        steps=steps,
        bracket=[passing, search.top],
        search_limit=_limit(search),
    )


def refuse_below_floor(floor: BenchResult, bound_us: float) -> None:
    """The floor step's p99 over the bound: no rate can pass, say so now."""
    p99 = floor.latency_us.get("p99")
    if p99 is not None and p99 > bound_us and not _server_broke(floor):
        raise SearchRefused(
            f"the floor here is p99 {p99:,} µs at {floor.rate:,g} msg/s, over the asked "
            f"bound of {bound_us:,.0f} µs: ask for a bound above the floor"
        )


def judge(result: BenchResult, bound_us: float) -> tuple[Verdict, str | None]:
    """A step's verdict, and why it did not pass."""
    why = failure(result, bound_us)
    if why is None:
        return "pass", None
    limit = client_limit(result, bound_us)
    if limit is not None and not _server_broke(result):
        return "inconclusive", f"{why}, but {limit}"
    return "fail", why


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
        return f"{behind:.1%} of due messages not sent in the window"
    return climbing(result, bound_us)


def climbing(result: BenchResult, bound_us: float) -> str | None:
    """Whether the latency climbed second by second: a queue that grows."""
    seconds = result.timeline[: int(result.duration_s)]
    p50s = [second["p50_us"] for second in seconds if second["p50_us"] is not None]
    if len(p50s) < 2:
        return None
    rising = all(later > earlier for earlier, later in itertools.pairwise(p50s))
    grew = p50s[-1] >= CLIMB_FACTOR * p50s[0] and p50s[-1] - p50s[0] >= CLIMB_SHARE * bound_us
    if rising and grew:
        return "queue growing: p50 " + " → ".join(f"{p50:,}" for p50 in p50s) + " µs by second"
    return None


def client_limit(result: BenchResult, bound_us: float) -> str | None:
    """Why the client, not the server, may be what this step measured."""
    if result.client_cpu >= SATURATED_CPU:
        return f"the client's CPU was at {result.client_cpu:.0%}"
    for name, summary in (("send lag", result.send_lag_us), ("hiccups", result.loop_lag_us)):
        p99 = (summary or {}).get("p99")
        if p99 is not None and p99 > CLIENT_SHARE * bound_us:
            return f"the client's {name} p99 was {p99:,} µs"
    return None


def next_rate(passing: float | None, failing: float | None) -> float | None:
    """The next rate to bisect to, or ``None`` once the bracket is narrow enough."""
    if failing is None:
        assert passing is not None
        return passing * 2
    if passing is None:
        lower = failing / 2
        return lower if lower >= FLOOR_RATE else None
    if failing <= passing * (1 + PRECISION):
        return None
    return _round((passing + failing) / 2)


def describe_step(
    rate: float, result: BenchResult, verdict: Verdict, why: str | None
) -> dict[str, Any]:
    """One step, for the JSON and the table."""
    return {
        "rate": rate,
        "sent_rate": result.sent_rate,
        "rps": result.rps,
        "p50_us": result.latency_us["p50"],
        "p99_us": result.latency_us["p99"],
        "send_lag_p99_us": (result.send_lag_us or {}).get("p99"),
        "client_cpu": result.client_cpu,
        "timed_out": result.timed_out,
        "errors": result.errors,
        "mismatches": result.mismatches,
        "behind": result.behind,
        "client_limits": result.client_limits,
        "verdict": verdict,
        "passed": verdict == "pass",
        "why": why,
    }


def _fell_short(verdicts: list[Verdict]) -> bool:
    return any(verdict != "pass" for verdict in verdicts)


def _server_broke(result: BenchResult) -> bool:
    """Wrong replies and lost connections are the server's, however busy the client."""
    return bool(result.errors or result.mismatches)


def _limit(search: Search) -> str | None:
    if search.top is None:
        return None
    return "client" if search.client_bound else "server"


def _round(rate: float) -> float:
    """Three significant digits: rates that read well and differ by > 0.1%."""
    return float(f"{rate:.3g}")
