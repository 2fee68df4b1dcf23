"""A per-second time series of the measurement window.

Each second gets the round trips verified in it, a small histogram for its
p50/p99, the errors that happened in it (connections lost, wrong replies,
timed-out requests), the connections open at its end, and the connections
opened in it (``--churn``). Latencies are folded in when the harness
flushes them, a tenth of a second apart, so a reply may land in the next
second when it arrived just before a boundary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .histogram import Histogram

NS_PER_S = 1_000_000_000
# Two significant digits are plenty for a per-second p99 and keep each
# second's histogram small enough for hour-long runs.
SECOND_DIGITS = 2


@dataclass
class Second:
    """One second of one process; merges with the same second of others."""

    round_trips: int = 0
    errors: int = 0
    connections: int = 0
    connects: int = 0
    latency: bytes = b""  # an encoded histogram

    def add(self, other: Second) -> None:
        self.round_trips += other.round_trips
        self.errors += other.errors
        self.connections += other.connections
        self.connects += other.connects


@dataclass
class Timeline:
    """Collects seconds from ``start`` (monotonic ns) on."""

    start: int
    seconds: list[Second] = field(default_factory=list)
    _histogram: Histogram = field(default_factory=lambda: Histogram(digits=SECOND_DIGITS))
    _current: Second = field(default_factory=Second)
    _errors_before: int = 0
    _connects_before: int = 0

    def record(self, counts: Counter[int]) -> None:
        """Latencies in microseconds (value: how many) verified just now."""
        for value_us, count in counts.items():
            self._histogram.record(value_us, count)
        self._current.round_trips += counts.total()

    def advance(self, now: int, *, errors: int, connections: int, connects: int) -> None:
        """Close the seconds that ended by ``now``; counters are running totals."""
        while now >= self.start + (len(self.seconds) + 1) * NS_PER_S:
            self._close(errors, connections, connects)

    def finish(self, *, errors: int, connections: int, connects: int) -> None:
        """Close the last, possibly partial, second if anything happened in it."""
        if self._current.round_trips or errors > self._errors_before or not self.seconds:
            self._close(errors, connections, connects)

    def _close(self, errors: int, connections: int, connects: int) -> None:
        second = self._current
        second.errors = errors - self._errors_before
        second.connections = connections
        second.connects = connects - self._connects_before
        second.latency = self._histogram.encode()
        self.seconds.append(second)
        self._errors_before, self._connects_before = errors, connects
        self._current = Second()
        self._histogram = Histogram(digits=SECOND_DIGITS)


def merge_timelines(timelines: Sequence[Sequence[Second]]) -> list[dict[str, Any]]:
    """The processes' seconds added up: one JSON-ready entry per second."""
    length = max((len(seconds) for seconds in timelines), default=0)
    entries = []
    for number in range(length):
        total, latency = Second(), Histogram(digits=SECOND_DIGITS)
        for seconds in timelines:
            if number < len(seconds):
                total.add(seconds[number])
                latency.add(Histogram.decode(seconds[number].latency))
        summary = latency.summary()
        entries.append(
            {
                "second": number,
                "round_trips": total.round_trips,
                "p50_us": summary["p50"],
                "p99_us": summary["p99"],
                "errors": total.errors,
                "connections": total.connections,
                "connects": total.connects,
            }
        )
    return entries
