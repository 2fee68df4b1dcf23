"""The set of open connections: shutdown, timeouts and capacity act on it.

uvloop's server has no ``close_clients()``, and asyncio's appeared only in
3.13, so the server tracks its own connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .counters import Counters

# The most bytes taken from one connection in one read. A connection whose
# read fills it yields its next read to the others (libuv would otherwise read
# up to 32 times from one socket per loop turn), so this is also the share of
# a loop turn a pipelining client gets. Redis reads 16 KiB per client per
# event; measured here, 10 ping-pong neighbours kept about 40% of their round
# trips beside a flat-out pipeliner at 64 KiB and 55-60% at 16 or 32 KiB,
# while 16 KiB lines, 16 in flight, cost 1.3x at 32 KiB and 1.9x at 16 KiB.
RECEIVE_BUFFER_SIZE = 32 * 1024

# A timeout fires between 1 and 1 + 1/SWEEPS_PER_TIMEOUT of its length after
# the last activity, and sweeps run at most once per MAX_SWEEP_INTERVAL.
SWEEPS_PER_TIMEOUT = 10
MIN_SWEEP_INTERVAL = 0.01
MAX_SWEEP_INTERVAL = 1.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class Timeouts:
    """Per-connection time limits in seconds (0 = off), and how often to check them."""

    interval: float
    """Seconds between sweeps."""
    idle: float
    """A connection that sent nothing for this long is idle."""
    write: float
    """Replies may stay blocked by a peer that does not read for this long."""
    line: float
    """A line must be complete within this long of its first byte."""

    @classmethod
    def of(cls, idle: float, write: float, line: float, always: bool = False) -> Timeouts | None:
        """The sweep plan for these limits; None if all are off and nothing else needs sweeps.

        ``always``: sweep even with every timeout off (the memory budget
        refreshes its count of unsent replies on each sweep).
        """
        shortest = min((t for t in (idle, write, line) if t > 0), default=0.0)
        if not shortest and not always:
            return None
        interval = shortest / SWEEPS_PER_TIMEOUT if shortest else MAX_SWEEP_INTERVAL
        interval = min(max(interval, MIN_SWEEP_INTERVAL), MAX_SWEEP_INTERVAL)
        return cls(interval, idle, write, line)


class Connection(Protocol):
    """What the tracker needs from a connection."""

    def close_gracefully(self) -> None: ...

    def abort(self) -> None: ...

    def sweep(self, now: float, timeouts: Timeouts) -> None: ...

    def shed_memory(self) -> None: ...


class ConnectionTracker:
    """Open connections, the server's counters, and a signal when none are left.

    It also keeps the client memory budget: each connection reports the bytes
    it holds (input not yet answered, replies not yet sent) through
    :meth:`hold`, and when the sum passes ``memory_limit`` the connection
    holding the most is shed, as Redis does with ``maxmemory-clients``.
    """

    def __init__(
        self,
        on_closed: Callable[[Connection], None] = lambda connection: None,
        *,
        clock: Clock | None = None,
        memory_limit: int = 0,
    ) -> None:
        self.counters = Counters()
        self.receive_buffer = bytearray(RECEIVE_BUFFER_SIZE)
        self.receive_view = memoryview(self.receive_buffer)
        self.clock: Clock = clock or time.monotonic  # what both loops' time() reads
        self.memory_limit = memory_limit
        self._held: dict[Connection, int] = {}
        self._shedding = False
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
        self.hold(connection, 0)
        self.counters.active -= 1
        if not self._open:
            self._none_open.set()
        self._on_closed(connection)

    def hold(self, connection: Connection, size: int) -> None:
        """Record that ``connection`` now holds ``size`` bytes of client data."""
        held = self._held
        before = held.pop(connection, 0)
        if size:
            held[connection] = size
        self.counters.buffered += size - before
        if self.memory_limit and self.counters.buffered > self.memory_limit:
            self._shed()

    def _shed(self) -> None:
        """Shed the biggest holders until the sum is back under the budget."""
        if self._shedding:  # a shed connection's last writes report back here
            return
        self._shedding = True
        try:
            held = self._held
            while held and self.counters.buffered > self.memory_limit:
                biggest = max(held, key=held.__getitem__)
                self.hold(biggest, 0)  # counted free now: its buffers are dropped or aborted
                biggest.shed_memory()
        finally:
            self._shedding = False

    def close_all_gracefully(self) -> None:
        self._closing = True
        self.stop_sweeping()
        for connection in list(self._open):
            connection.close_gracefully()

    def abort_all(self) -> None:
        for connection in list(self._open):
            connection.abort()

    def wait_none_open(self) -> Coroutine[Any, Any, Literal[True]]:
        """Wait until no connection is open.

        The Event's own coroutine, not one of this module: compiled, a
        coroutine here would relay a cancellation's throw() to it through
        Cython's code rather than CPython's, whose arguments differ across
        Cython versions (the (type, exc, tb) form is deprecated from 3.12).
        """
        return self._none_open.wait()

    def start_sweeping(self, timeouts: Timeouts) -> None:
        """Check every connection's timeouts once per ``timeouts.interval``."""
        loop = asyncio.get_running_loop()

        def sweep() -> None:
            self.sweep(timeouts)
            self._sweeps = loop.call_later(timeouts.interval, sweep)

        self._sweeps = loop.call_later(timeouts.interval, sweep)

    def sweep(self, timeouts: Timeouts) -> None:
        """Check every connection's timeouts and held memory against ``clock()`` now."""
        now = self.clock()
        for connection in list(self._open):
            connection.sweep(now, timeouts)

    def stop_sweeping(self) -> None:
        if self._sweeps is not None:
            self._sweeps.cancel()
            self._sweeps = None
