"""Latencies counted as they come: exact, and nothing to allocate per reply.

The harness records one latency per reply. An HDR histogram's
``record_value`` is pure Python (about 0.6 µs), so replies are counted here
instead, per microsecond as finely as the histogram tells values apart, and
folded into the histogram once a second (``aioecho.bench.histogram``): one
``record_value`` per distinct value, with its count. Folding ``n`` counts of
a value is recording it ``n`` times, so the histogram is exactly what
recording every value would give.
"""

from __future__ import annotations

import array
from collections import Counter

# Values under this many microseconds (65.5 ms, nearly every reply) are
# counted in an array; longer ones in a dict.
ARRAY_US = 1 << 16

# An HDR histogram of 3 significant digits tells apart every value under
# 2,048 and, above, 1,024 values per power of two: it records alike every
# value v with the same v >> s << s, for the least s that leaves v >> s under
# 2,048. So are they counted here: at 10,000 connections, where latencies
# spread over a hundred milliseconds, a second's replies then fold in a few
# thousand calls instead of one per reply.
EXACT_LIMIT = 1 << 11

Counts = dict[int, int]


class LatencyCounts:
    """Nanosecond latencies, counted in microseconds under a label (a second of the run).

    :meth:`mark` files what is recorded from then on under another label;
    :meth:`drain` hands out and forgets everything recorded so far.
    """

    __slots__ = ("_groups", "_label", "_large", "_recorded", "_small", "_touched", "samples")

    def __init__(self) -> None:
        self._small = array.array("q", bytes(8 * ARRAY_US))
        self._touched: list[int] = []  # the values of _small that are not zero
        self._large: Counts = {}
        self._groups: list[tuple[int, Counts]] = []  # labelled counts that mark() set aside
        self._label = 0
        self._recorded = 0  # values recorded since the last drain
        # Pure Python's hot path appends nanoseconds here (one C call, where
        # record() would be a Python call); they are counted at the next mark.
        self.samples: list[int] = []

    @property
    def marked(self) -> bool:
        """Whether values of an earlier label wait to be drained."""
        return bool(self._groups)

    @property
    def pending(self) -> int:
        """Values recorded since the last drain."""
        return self._recorded + len(self.samples)

    def record(self, nanoseconds: int) -> None:
        """Count one latency; negative ones (a clock step) count as 0."""
        self._add(max(nanoseconds // 1000, 0), 1)

    def _add(self, micros: int, count: int) -> None:
        shift = 0
        while micros >> shift >= EXACT_LIMIT:
            shift += 1
        micros = micros >> shift << shift
        if micros < ARRAY_US:
            if not self._small[micros]:
                self._touched.append(micros)
            self._small[micros] += count
        else:
            self._large[micros] = self._large.get(micros, 0) + count
        self._recorded += count

    def mark(self, label: int) -> None:
        """File the values recorded from now on under ``label``."""
        self._groups.append((self._label, self._take()))
        self._label = label

    def drain(self) -> list[tuple[int, Counts]]:
        """Every value recorded since the last drain: (label, microseconds -> count)."""
        groups = [*self._groups, (self._label, self._take())]
        self._groups = []
        self._recorded = 0
        return [(label, counts) for label, counts in groups if counts]

    def _take(self) -> Counts:
        samples = self.samples
        if samples:  # equal values first: one _add() per distinct value
            # Emptied in place: the hot path holds this list's append.
            counted = Counter([sample // 1000 for sample in samples])
            samples.clear()
            for micros, count in counted.items():
                self._add(max(micros, 0), count)
        small = self._small
        counts = {micros: small[micros] for micros in self._touched}
        for micros in self._touched:
            small[micros] = 0
        self._touched.clear()
        counts.update(self._large)
        self._large = {}
        return counts
