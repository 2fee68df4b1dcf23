"""The client's own hiccups, as jHiccup measures a JVM's: a timer that should
ring every millisecond, and how late it rang.

Whatever keeps the event loop from running a timer on time (a long callback,
a burst of replies, the garbage collector, the process kept off a core) also
delays every request and reply of the client: a latency figure near the
hiccups is the client's, not the server's.
"""

from __future__ import annotations

from time import monotonic_ns

from .alarm import Alarm
from .histogram import Histogram

INTERVAL_NS = 1_000_000
INTERVAL_US = INTERVAL_NS // 1000


class HiccupProbe:
    """Rings every :data:`INTERVAL_NS` on the running loop while started; :meth:`take`
    hands over how late each ring was (microseconds, with the rings a stall
    held up counted too, as jHiccup does) and starts a new count."""

    def __init__(self) -> None:
        self._alarm: Alarm | None = None
        self._due = 0
        self._lateness = Histogram()

    def start(self) -> None:
        """Begin ringing (on the running loop); no-op if already started."""
        if self._alarm is None:
            self._alarm = Alarm(self._ring)
            self._due = monotonic_ns() + INTERVAL_NS
            self._alarm.at(self._due)

    def stop(self) -> None:
        if self._alarm is not None:
            self._alarm.close()
            self._alarm = None

    def take(self) -> Histogram:
        """The lateness recorded since the last take."""
        taken, self._lateness = self._lateness, Histogram()
        return taken

    def _ring(self) -> None:
        now = monotonic_ns()
        self._lateness.record_corrected(max(0, now - self._due) // 1000, INTERVAL_US)
        if self._alarm is not None:
            # The next ring a full interval after this one, as jHiccup sleeps:
            # one stall is one hiccup, not a burst of missed rings.
            self._due = now + INTERVAL_NS
            self._alarm.at(self._due)
