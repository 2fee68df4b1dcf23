"""Deadlines by which watched parties must be heard from, judged on a clock.

The supervisor watches its workers with one: a worker that sends no status
report in time is hung. Two things must not look like a hung worker:

- reports already sent but not yet read: before judging, the watchdog reads
  every party's pending reports (its *inbox*), so that the order in which an
  event loop runs timers and readers after a pause cannot matter;
- time the watchdog itself did not run (its process stopped by SIGSTOP, a
  debugger, a container freeze, or starved): nobody could hear from the
  parties meanwhile. A check that comes later than scheduled moves every
  deadline later by the delay, so only the watchdog's own running time counts,
  however often that happens (a hung party is still found after its grace).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

Clock = Callable[[], float]
Inbox = Callable[[], object]
"""Reads a party's pending reports (each one calls :meth:`Watchdog.expect`)."""


class Watchdog(Generic[K]):
    """Deadlines by which each party must be heard from again, checked every ``interval`` s."""

    def __init__(self, clock: Clock, interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._deadlines: dict[K, float] = {}
        self._inboxes: dict[K, Inbox] = {}
        self._next_check = clock() + interval
        self.held_up = 0.0
        """Seconds the last check came later than scheduled: not counted against anyone."""

    def expect(self, party: K, within: float) -> None:
        """``party`` must be heard from within ``within`` seconds from now."""
        self._deadlines[party] = self._clock() + within

    def listen(self, party: K, inbox: Inbox) -> None:
        """Read ``party``'s pending reports with ``inbox`` before each judgement."""
        self._inboxes[party] = inbox

    def forget(self, party: K) -> None:
        self._deadlines.pop(party, None)
        self._inboxes.pop(party, None)

    def until_check(self) -> float:
        """Seconds until the next check is due."""
        return max(0.0, self._next_check - self._clock())

    def overdue(self) -> list[K]:
        """Check now: the parties whose deadline has passed, once their reports are read."""
        for inbox in list(self._inboxes.values()):
            inbox()
        now = self._clock()
        self.held_up = max(0.0, now - self._next_check)
        for party in self._deadlines:
            self._deadlines[party] += self.held_up
        self._next_check = now + self._interval
        return [party for party, deadline in self._deadlines.items() if now > deadline]
