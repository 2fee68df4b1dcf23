"""The set of open connections, so shutdown can close them on any loop.

uvloop's server has no ``close_clients()``, and asyncio's appeared only in
3.13, so the server tracks its own connections.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .stats import Counters

RECEIVE_BUFFER_SIZE = 256 * 1024


class Connection(Protocol):
    """What the tracker needs from a connection."""

    def close_gracefully(self) -> None: ...

    def abort(self) -> None: ...


class ConnectionTracker:
    """Open connections, the server's counters, and a signal when none are left."""

    def __init__(self) -> None:
        self.counters = Counters()
        self.receive_buffer = bytearray(RECEIVE_BUFFER_SIZE)
        self.receive_view = memoryview(self.receive_buffer)
        self._open: set[Connection] = set()
        self._none_open = asyncio.Event()
        self._none_open.set()

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, connection: Connection) -> None:
        self._open.add(connection)
        self._none_open.clear()
        self.counters.accepted += 1
        self.counters.active += 1

    def closed(self, connection: Connection) -> None:
        self._open.discard(connection)
        self.counters.active -= 1
        if not self._open:
            self._none_open.set()

    def close_all_gracefully(self) -> None:
        for connection in list(self._open):
            connection.close_gracefully()

    def abort_all(self) -> None:
        for connection in list(self._open):
            connection.abort()

    async def wait_none_open(self) -> None:
        await self._none_open.wait()
