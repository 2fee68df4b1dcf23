"""Idle connections (``--idle N``): held open and silent beside the active ones.

The tutorial's central claim is that ``select`` scans every descriptor it
watches, so its cost grows with the connections even when they are idle,
where epoll's follows the ready ones only. A load where every connection is
busy cannot show it; idle connections beside a few active ones can. Each
idle connection opens before the window, says nothing during it, and is
checked alive with one verified round trip after it: one that died (the
server dropped it, or it no longer answers) is an error of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast


def idle_exchange(expect: str, suffix: str) -> tuple[bytes, bytes]:
    """The request an idle connection is checked with, and the reply it must get."""
    if expect == "echo":
        return b"idle\n", b"idle\n"
    return b"idle\n", b"IDLE" + suffix.encode() + b"\n"


class IdleConnection(asyncio.Protocol):
    """A connection that stays silent until :meth:`check` sends one request and
    verifies its reply."""

    def __init__(self, request: bytes, reply: bytes) -> None:
        self._request = request
        self._reply = reply
        self._received = bytearray()
        self._answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        # Anything before the check, or beyond its reply, is wrong too.
        self._received += data
        if len(self._received) >= len(self._reply) or not self._reply.startswith(self._received):
            self._settle(bytes(self._received) == self._reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._settle(False)

    async def check(self, timeout: float) -> bool:
        """Whether the connection is still up and answers one request right."""
        if self.transport is None or self._answered.done():
            return False  # lost, or spoke before it was asked
        self.transport.write(self._request)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._answered)
        return False

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def _settle(self, right: bool) -> None:
        if not self._answered.done():
            self._answered.set_result(right)
