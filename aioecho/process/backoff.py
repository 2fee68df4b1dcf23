"""When to restart a worker that exited: a back-off that doubles while it keeps
dying, and starts over once it stayed up."""

from __future__ import annotations

from collections.abc import Callable

# A worker that keeps dying waits twice as long before each restart, up to the
# maximum; one that stayed up STABLE_UPTIME seconds starts over at the minimum.
RESTART_DELAY_MIN = 0.5
RESTART_DELAY_MAX = 30.0
STABLE_UPTIME = 10.0


def next_restart_delay(previous: float | None, uptime: float) -> float:
    """Seconds before restarting a worker that exited after ``uptime`` seconds.

    ``previous`` is the delay before its last restart (None: never restarted).
    """
    if previous is None or uptime >= STABLE_UPTIME:
        return RESTART_DELAY_MIN
    return min(previous * 2, RESTART_DELAY_MAX)


class RestartBackoff:
    """The waits before restarting one worker, timed on ``clock``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._started = clock()
        self._delay: float | None = None

    def started(self) -> None:
        """A process of the worker started now."""
        self._started = self._clock()

    def next_delay(self) -> float:
        """It exited now: seconds to wait before the next start."""
        self._delay = next_restart_delay(self._delay, self._clock() - self._started)
        return self._delay
