"""The set of open connections: shutdown, timeouts and capacity act on it.

uvloop's server has no ``close_clients()``, and asyncio's appeared only in
3.13, so the server tracks its own connections.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .stats import Counters

RECEIVE_BUFFER_SIZE = 256 * 1024

# A timeout fires between 1 and 1 + 1/SWEEPS_PER_TIMEOUT of its length after
# the last activity, and sweeps run at most once per MAX_SWEEP_INTERVAL.
SWEEPS_PER_TIMEOUT = 10
MIN_SWEEP_INTERVAL = 0.01
MAX_SWEEP_INTERVAL = 1.0


@dataclass(frozen=True)
class Timeouts:
    """Per-connection time limits, in the units a sweep works with."""

    interval: float
    """Seconds between sweeps."""
    idle_sweeps: int
    """Sweeps without a read after which a connection is idle; 0 = never."""
    write_timeout: float
    """Seconds replies may stay blocked by a peer that does not read; 0 = never."""

    @classmethod
    def of(cls, idle_timeout: float, write_timeout: float) -> Timeouts | None:
        """The sweep plan for these limits, or None if both are off."""
        shortest = min((t for t in (idle_timeout, write_timeout) if t > 0), default=0.0)
        if not shortest:
            return None
        interval = min(max(shortest / SWEEPS_PER_TIMEOUT, MIN_SWEEP_INTERVAL), MAX_SWEEP_INTERVAL)
        idle_sweeps = math.ceil(idle_timeout / interval) if idle_timeout else 0
        return cls(interval, idle_sweeps, write_timeout)


class Connection(Protocol):
    """What the tracker needs from a connection."""

    def close_gracefully(self) -> None: ...

    def abort(self) -> None: ...

    def sweep(self, now: float, timeouts: Timeouts) -> None: ...


class ConnectionTracker:
    """Open connections, the server's counters, and a signal when none are left."""

    def __init__(self, on_closed: Callable[[], None] = lambda: None) -> None:
        self.counters = Counters()
        self.receive_buffer = bytearray(RECEIVE_BUFFER_SIZE)
        self.receive_view = memoryview(self.receive_buffer)
        self._on_closed = on_closed
        self._open: set[Connection] = set()
        self._none_open = asyncio.Event()
        self._none_open.set()
        self._closing = False
        self._sweeps: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, connection: Connection) -> None:
        """Count a connection from the moment it is accepted."""
        self._open.add(connection)
        self._none_open.clear()
        self.counters.accepted += 1
        self.counters.active += 1
        if self._closing:
            connection.close_gracefully()  # admitted just as the server began to stop

    def closed(self, connection: Connection) -> None:
        if connection not in self._open:
            return  # already counted out, by a failed admission
        self._open.remove(connection)
        self.counters.active -= 1
        if not self._open:
            self._none_open.set()
        self._on_closed()

    def close_all_gracefully(self) -> None:
        self._closing = True
        self.stop_sweeping()
        for connection in list(self._open):
            connection.close_gracefully()

    def abort_all(self) -> None:
        for connection in list(self._open):
            connection.abort()

    async def wait_none_open(self) -> None:
        await self._none_open.wait()

    def start_sweeping(self, timeouts: Timeouts) -> None:
        """Check every connection's timeouts once per ``timeouts.interval``."""
        loop = asyncio.get_running_loop()

        def sweep() -> None:
            now = loop.time()
            for connection in list(self._open):
                connection.sweep(now, timeouts)
            self._sweeps = loop.call_later(timeouts.interval, sweep)

        self._sweeps = loop.call_later(timeouts.interval, sweep)

    def stop_sweeping(self) -> None:
        if self._sweeps is not None:
            self._sweeps.cancel()
            self._sweeps = None
