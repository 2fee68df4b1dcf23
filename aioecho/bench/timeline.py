"""A per-second time series of the measurement window.

Each second gets the round trips verified in it and a small histogram for
its p50/p99/max (filed by the instant each reply arrived, or with
``--timeline-by due`` by the instant its latency counts from, exactly: the
connections mark where a new second begins), the errors that happened in
it (connections lost, wrong replies, timed-out requests), the connections
open at its end, the connections opened in it (``--churn``), and the
connections that got no reply in all of it (starved). The last
three are sampled by the harness's 0.1 s ticker, so a loop too busy to run
its timers files them late. Replies awaited after the window may add
trailing seconds of round trips.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NS_PER_S = 1_000_000_000
# A second's latencies are kept to this many significant bits (within 1/64,
# about two decimal digits): plenty for a per-second p50/p99, few distinct
# values to keep, and cheap to fold in (an HDR record costs ten times more).
SECOND_BITS = 7


@dataclass
class Second:
    """One second of one process; merges with the same second of others."""

    round_trips: int = 0
    errors: int = 0
    connections: int = 0
    connects: int = 0
    starved: int = 0
    latency: Counter[int] = field(default_factory=Counter)  # coarse µs -> count

    def add(self, other: Second) -> None:
        self.latency.update(other.latency)
        self.round_trips += other.round_trips
        self.errors += other.errors
        self.connections += other.connections
        self.connects += other.connects
        self.starved += other.starved


@dataclass
class Timeline:
    """Collects the seconds of a window that starts at ``start`` (monotonic ns);
    a second lasts ``second_ns`` (shorter only where a test compresses time)."""

    start: int
    second_ns: int = NS_PER_S
    seconds: list[Second] = field(default_factory=list)
    _latency: dict[int, Counter[int]] = field(default_factory=dict)
    _trips: Counter[int] = field(default_factory=Counter)
    # Running totals (errors, connections, connects) at the end of each second.
    _totals: list[tuple[int, int, int]] = field(default_factory=list)

    def record(self, second: int, counts: Mapping[int, int]) -> None:
        """Latencies in microseconds (value: how many) of replies that came in ``second``."""
        coarse = self._latency.setdefault(second, Counter())
        for value_us, count in counts.items():
            coarse[_coarse(value_us)] += count
        self._trips[second] += sum(counts.values())

    def advance(self, now: int, *, errors: int, connections: int, connects: int) -> None:
        """Close the seconds that ended by ``now``; the counters are running totals."""
        while now >= self.start + (len(self._totals) + 1) * self.second_ns:
            self._totals.append((errors, connections, connects))

    def finish(
        self,
        *,
        errors: int,
        connections: int,
        connects: int,
        starved: Mapping[int, int] | None = None,
    ) -> None:
        """Close the last, possibly partial, second and build :attr:`seconds`;
        ``starved`` counts, by second, the connections that got no reply in it."""
        starved = starved or {}
        last = max(self._trips, default=-1)
        previous = self._totals[-1] if self._totals else (0, 0, 0)
        if not self._totals or last >= len(self._totals) or errors > previous[0]:
            self._totals.append((errors, connections, connects))
        self.seconds = []
        before = (0, 0, 0)
        for number in range(max(len(self._totals), last + 1)):
            totals = self._totals[min(number, len(self._totals) - 1)]
            latency = self._latency.get(number, Counter())
            self.seconds.append(
                Second(
                    round_trips=self._trips[number],
                    errors=totals[0] - before[0],
                    connections=totals[1],
                    connects=totals[2] - before[2],
                    starved=starved.get(number, 0),
                    latency=latency,
                )
            )
            before = totals


def merge_timelines(timelines: Sequence[Sequence[Second]]) -> list[dict[str, Any]]:
    """The processes' seconds added up: one JSON-ready entry per second."""
    length = max((len(seconds) for seconds in timelines), default=0)
    entries = []
    for number in range(length):
        total = Second()
        for seconds in timelines:
            if number < len(seconds):
                total.add(seconds[number])
        entries.append(
            {
                "second": number,
                "round_trips": total.round_trips,
                "p50_us": percentile(total.latency, 50),
                "p99_us": percentile(total.latency, 99),
                "max_us": percentile(total.latency, 100),
                "errors": total.errors,
                "connections": total.connections,
                "connects": total.connects,
                "starved": total.starved,
            }
        )
    return entries


def percentile(counts: Counter[int], percent: float) -> int | None:
    """The value at ``percent`` of coarse counts: the top of its bucket, as HDR reports."""
    total = counts.total()
    if not total:
        return None
    rank, seen = total * percent / 100, 0
    values = sorted(counts)
    for value in values:
        seen += counts[value]
        if seen >= rank:
            break
    return value + (1 << _shift(value)) - 1


def _shift(value: int) -> int:
    return max(0, value.bit_length() - SECOND_BITS)


def _coarse(value: int) -> int:
    """``value`` with all but its top SECOND_BITS bits cleared."""
    shift = _shift(value)
    return value >> shift << shift
