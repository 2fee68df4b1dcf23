"""What the server spent per round trip: CPU time of a server on this machine,
read from ``/proc`` at the window's start and end.

The processes are found as for memory (``memory.listening_pids``). CPU time
is what the kernel charged them, user and system, in clock ticks (10 ms
each): over a window of seconds the figure is good to about a percent. A
thread samples at the window's start, on the monotonic clock, so that the
event loop running the load is never held up by it.
"""

from __future__ import annotations

import threading
from time import monotonic_ns

from ..procfs import cpu_seconds, summed
from .memory import ServerMemory, listening_pids

NS_PER_S = 1_000_000_000
US_PER_S = 1_000_000


class ServerCpu:
    """The CPU a server on this machine used from the window's start to :meth:`stop`."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._start: float | None = None
        self._end: float | None = None
        self._cancelled = threading.Event()
        self._sampler: threading.Thread | None = None

    @classmethod
    def of_local_port(cls, port: int) -> ServerCpu:
        """The processes listening on ``port`` here (none found: no figure)."""
        return cls(listening_pids(port))

    def start_at(self, instant: int) -> None:
        """Take the first sample at ``instant`` (monotonic ns), from a thread."""

        def sample() -> None:
            if not self._cancelled.wait(max(0.0, (instant - monotonic_ns()) / NS_PER_S)):
                self._start = summed(cpu_seconds, self.pids)

        self._sampler = threading.Thread(target=sample, name="server-cpu", daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        """Take the last sample now (no figure if the window had not begun)."""
        self._cancelled.set()
        if self._sampler is not None:
            self._sampler.join()
        self._end = summed(cpu_seconds, self.pids)

    def per_round_trip_us(self, round_trips: int) -> float | None:
        """Microseconds of server CPU per round trip, if it could be measured."""
        if self._start is None or self._end is None or round_trips <= 0:
            return None
        return round((self._end - self._start) * US_PER_S / round_trips, 2)


class ServerProbes:
    """What the harness measures of a server on this machine: memory per
    connection (``memory``, only on a fresh server it started) and CPU per
    round trip (``cpu``); either may be absent."""

    def __init__(self, memory: ServerMemory | None, cpu: ServerCpu | None) -> None:
        self.memory = memory
        self.cpu = cpu

    def before_connecting(self) -> None:
        if self.memory is not None:
            self.memory.before_connecting()

    def after_connecting(self) -> None:
        if self.memory is not None:
            self.memory.after_connecting()

    def window_starts_at(self, instant: int) -> None:
        if self.cpu is not None:
            self.cpu.start_at(instant)

    def traffic_over(self) -> None:
        if self.cpu is not None:
            self.cpu.stop()

    def bytes_per_connection(self, connected: int) -> float | None:
        return None if self.memory is None else self.memory.per_connection(connected)

    def cpu_us_per_round_trip(self, round_trips: int) -> float | None:
        return None if self.cpu is None else self.cpu.per_round_trip_us(round_trips)
