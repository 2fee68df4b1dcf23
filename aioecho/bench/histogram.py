"""Latency histograms: HDR for honest percentiles, cheap to feed per message.

``hdrh``'s ``record_value`` is pure Python and costs about 0.6 µs, a large
share of a round trip's budget. So the hot path only counts a latency per
microsecond (``aioecho.core.LatencyCounts``, C when compiled), and
:meth:`LatencyRecorder.flush` folds the counts into the histogram a few
times a second: one ``record_value`` per distinct value, with its count. The
histogram is exactly what recording every value would give, and memory
stays bounded however long the run.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO

from ..core import LatencyCounts
from ..extras import import_extra

import_extra("hdrh", "bench", "the load harness")  # first: a missing extra is named
from hdrh.histogram import HdrHistogram  # noqa: E402

# 1 µs to one hour: an open-loop run against a stalled server can see
# latencies of minutes, and a value past the top would be lost.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
# .hgrm files give milliseconds, as wrk2 and HdrHistogram's plotter expect.
US_PER_MS = 1000.0

# The summary's keys, as the JSON report names them.
PERCENTILES: dict[str, float] = {
    "p50": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p999": 99.9,
    "p9999": 99.99,
}
SUMMARY_KEYS = (*PERCENTILES, "max")

Summary = dict[str, int | None]


class Histogram:
    """An HDR histogram of microseconds that can travel between processes."""

    def __init__(
        self, hdr: HdrHistogram | None = None, *, digits: int = SIGNIFICANT_DIGITS
    ) -> None:
        self._hdr = hdr or HdrHistogram(LOWEST_US, HIGHEST_US, digits)

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return int(self._hdr.get_total_count())

    def record(self, value_us: int, count: int = 1) -> None:
        """Record ``value_us`` ``count`` times; values past the top are clamped."""
        self._hdr.record_value(min(max(value_us, 0), HIGHEST_US), count)

    def record_corrected(self, value_us: int, interval_us: int) -> None:
        """Record ``value_us`` from a probe meant to run every ``interval_us``, with
        the values the probes it missed would have seen (HdrHistogram's
        expected-interval correction): a 250 ms stall of a 1 ms probe counts
        as the 250 probes it held up, not as one."""
        self._hdr.record_corrected_value(min(max(value_us, 0), HIGHEST_US), interval_us)

    def add(self, other: Histogram) -> None:
        """Merge ``other`` into this histogram."""
        self._hdr.add(other._hdr)

    def encode(self) -> bytes:
        """A compact, picklable form for :meth:`decode` in another process."""
        return bytes(self._hdr.encode())

    @classmethod
    def decode(cls, encoded: bytes) -> Histogram:
        """The histogram :meth:`encode` produced."""
        return cls(HdrHistogram.decode(encoded))

    def write_hgrm(self, out: BinaryIO) -> None:
        """The percentile distribution in milliseconds, as HdrHistogram's tools
        and wrk2's ``--latency`` print it (the ``.hgrm`` format)."""
        text = io.BytesIO()
        self._hdr.output_percentile_distribution(text, US_PER_MS)
        # hdrh scales every figure of the footer but the standard deviation.
        stddev = b"StdDeviation   = %12.3f]" % (self._hdr.get_stddev() / US_PER_MS)
        out.write(re.sub(rb"StdDeviation   = +[0-9.]+\]", stddev, text.getvalue()))

    def percentile(self, percent: float) -> int:
        """The value at ``percent`` (0-100), in microseconds."""
        return int(self._hdr.get_value_at_percentile(percent))

    def summary(self) -> Summary:
        """p50 … p99.99 and max in microseconds; ``None`` each when nothing was recorded."""
        if self.count == 0:
            return dict.fromkeys(SUMMARY_KEYS)
        # One walk over the buckets for all percentiles: hdrh walks them in
        # Python, and a walk per percentile made a summary cost milliseconds.
        values = self._hdr.get_percentile_to_value_dict(list(PERCENTILES.values()))
        summary: Summary = {key: int(values[p]) for key, p in PERCENTILES.items()}
        summary["max"] = int(self._hdr.get_max_value())
        return summary


class LatencyRecorder:
    """Counts nanosecond latencies on the hot path, folds them into a histogram.

    Record through :attr:`counts` (the hot path binds it once), or
    :meth:`record`; call :meth:`flush` periodically and before reading
    :attr:`histogram`. ``counts.mark(label)`` files the values that follow
    under another label (a second of the run), so a flush can say which
    values came when.
    """

    def __init__(self, counts: LatencyCounts | None = None) -> None:
        self.counts = counts or LatencyCounts()
        self.histogram = Histogram()
        self._closed = False

    @property
    def count(self) -> int:
        """Values recorded so far, flushed or not."""
        return self.histogram.count + self.counts.pending

    def record(self, nanoseconds: int) -> None:
        self.counts.record(nanoseconds)

    def mark(self, label: int) -> None:
        """The values recorded from now on carry ``label``."""
        self.counts.mark(label)

    def flush(self) -> list[tuple[int, dict[int, int]]]:
        """Move the pending values into the histogram (drop them once closed).

        Returns what was added, by label: microsecond values and how often each came.
        """
        groups = self.counts.drain()
        if self._closed:
            return []
        record = self.histogram.record
        for _, counts in groups:
            for value_us, count in counts.items():
                record(value_us, count)
        return groups

    def close(self) -> None:
        """End the measurement: flush now, and count nothing recorded after this."""
        self.flush()
        self._closed = True
