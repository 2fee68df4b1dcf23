"""The open-loop schedule and the pacer that keeps it.

Message ``j`` is due at a fixed instant, independent of when replies
arrive: ``start + j / rate`` at a constant rate, or along a linear ramp
from one rate to another. The pacer wakes at most once a millisecond and
sends every message already due, so its CPU cost follows the messages sent
rather than the wake-ups (a timer asked for less than a millisecond makes
uvloop poll with a zero timeout, which is a busy spin).
"""

from __future__ import annotations

import asyncio
import math
from time import monotonic_ns

from ..core import OpenLoopConnection
from .alarm import Alarm

NS_PER_S = 1_000_000_000
# A process woken from an idle CPU takes hundreds of microseconds (a VM's
# virtual CPU longer) to run: at 1,000 msg/s against the C server that
# wake-up was most of the p99 (906-2,471 µs, against 216-338 µs keeping
# awake). So when the next message is far enough off that the process
# would go idle (QUIET_NS), the alarm rings SPIN_NS early and the pacer
# spins to the due instant, and after a send the loop keeps polling (no
# sleep in epoll) for POLL_NS, so the reply is read as it lands. It costs
# at most (SPIN_NS + POLL_NS) / QUIET_NS of a core (0.4 at 1,000 msg/s per
# process); at higher rates the process never idles and neither happens.
SPIN_NS = 100_000
POLL_NS = 300_000
QUIET_NS = 900_000


class Schedule:
    """When each message is due: ``rate`` from ``start``; with a ramp, the rate
    grows linearly from ``rate`` at ``ramp_start`` to ``rate_to`` over
    ``ramp_s`` seconds, then stays there. Times are monotonic nanoseconds."""

    def __init__(
        self,
        start: int,
        rate: float,
        *,
        rate_to: float | None = None,
        ramp_start: int | None = None,
        ramp_s: float | None = None,
    ) -> None:
        self.start = start
        self.rate = rate
        self._interval = NS_PER_S / rate
        self._ramped = rate_to is not None and ramp_s is not None and ramp_start is not None
        self._to = rate if rate_to is None else rate_to
        self._ramp_start = start if ramp_start is None else ramp_start
        self._ramp_s = ramp_s or 0.0
        # Messages due before the ramp, and by its end.
        self._before = rate * (self._ramp_start - start) / NS_PER_S
        self._by_end = self._before + (rate + self._to) * self._ramp_s / 2

    def due(self, message: int) -> int:
        """The instant message number ``message`` is due."""
        if not self._ramped or message <= self._before:
            return self.start + int(message * self._interval)
        if message >= self._by_end:
            seconds = self._ramp_s + (message - self._by_end) / self._to
        else:
            seconds = self._ramp_seconds(message - self._before)
        return self._ramp_start + int(seconds * NS_PER_S)

    def messages_by(self, instant: int) -> float:
        """How many messages are due before ``instant``, as a real number."""
        seconds = (instant - self.start) / NS_PER_S
        if not self._ramped or instant <= self._ramp_start:
            return max(0.0, seconds * self.rate)
        into = (instant - self._ramp_start) / NS_PER_S
        if into >= self._ramp_s:
            return self._by_end + (into - self._ramp_s) * self._to
        slope = (self._to - self.rate) / self._ramp_s
        return self._before + self.rate * into + slope * into * into / 2

    def count_before(self, instant: int) -> int:
        """The number of messages due strictly before ``instant``."""
        return math.ceil(self.messages_by(instant))

    def rate_at(self, instant: int) -> float:
        """The scheduled rate at ``instant``."""
        if not self._ramped or instant <= self._ramp_start:
            return self.rate
        into = (instant - self._ramp_start) / NS_PER_S
        if into >= self._ramp_s:
            return self._to
        return self.rate + (self._to - self.rate) * into / self._ramp_s

    def _ramp_seconds(self, count: float) -> float:
        """Seconds into the ramp at which ``count`` ramp messages are due."""
        slope = (self._to - self.rate) / self._ramp_s
        if abs(slope) < 1e-12:
            return count / self.rate
        # count = rate * s + slope * s**2 / 2, solved for s >= 0.
        return (-self.rate + math.sqrt(self.rate**2 + 2 * slope * count)) / slope


class Pacer:
    """Sends the schedule's messages round-robin over the connections.

    ``total`` bounds the messages (``--messages``); ``None`` runs until
    :meth:`stop`.
    """

    def __init__(
        self, connections: list[OpenLoopConnection], schedule: Schedule, total: int | None
    ) -> None:
        self._connections = connections
        self._schedule = schedule
        self._total = total
        self._next = 0
        self._alarm: Alarm | None = None
        self.precise = False
        self._poll_until = 0

    @property
    def scheduled(self) -> int:
        """Messages handed to connections so far."""
        return self._next

    def start(self) -> None:
        """Send what is due, and the rest as it falls due (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._alarm = Alarm(self._tick)
        # Whether it wakes to the microsecond (see Alarm), for the report.
        self.precise = self._alarm.precise
        self._tick()

    def stop(self) -> None:
        if self._alarm is not None:
            self._alarm.close()
            self._alarm = None

    def catch_up(self, until: int) -> None:
        """Send now every message due before ``until`` that is not out yet (the
        window ended while the loop was busy): late, and timed as such."""
        self._send_due(until, monotonic_ns())

    def _send_due(self, before: int, now: int) -> None:
        """Hand the connections every message due before ``before`` (and within
        ``total``), each timed from its due instant, as written ``now``."""
        schedule, connections = self._schedule, self._connections
        message, stop = self._next, self._total
        while (stop is None or message < stop) and (intended := schedule.due(message)) < before:
            connections[message % len(connections)].send_at(intended, now)
            message += 1
        self._next = message

    def _tick(self) -> None:
        now = monotonic_ns()
        schedule, first = self._schedule, self._next
        due = schedule.due(first)
        if 0 < due - now <= SPIN_NS:
            while now < due:  # awake and on time, rather than woken late
                now = monotonic_ns()
        self._send_due(now + 1, now)
        if self._total is not None and self._next >= self._total:
            self.stop()
            for connection in self._connections:
                connection.finish_schedule()
            return
        if self._alarm is not None:
            due = schedule.due(self._next)
            quiet = due - now >= QUIET_NS
            self._alarm.at(due - SPIN_NS if quiet else due)
            if quiet and self._next > first:  # sent something: its reply comes soon
                self._poll_until = now + POLL_NS
                self._poll()

    def _poll(self) -> None:
        """Keep the loop polling (no sleep in epoll) for a moment after a send: the
        reply is read as it lands instead of after the CPU wakes up again."""
        if self._alarm is not None and monotonic_ns() < self._poll_until:
            self._loop.call_soon(self._poll)
