"""The per-connection protocols: framing, backpressure and the error path."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from .connections import ConnectionTracker
from .framing import LineEcho
from .stats import CloseReason

logger = logging.getLogger("aioecho")

# Explicit on both loops: uvloop's default low-water mark is 16 bytes and
# asyncio's 16 KiB. A peer that never reads can pin at most about this much
# reply data in the server before its reading is paused.
WRITE_HIGH_WATER = 64 * 1024
WRITE_LOW_WATER = 16 * 1024


class EchoProtocol(asyncio.Protocol):
    """What every echo connection shares: bookkeeping, backpressure, closing."""

    def __init__(self, tracker: ConnectionTracker) -> None:
        self._tracker = tracker
        self._counters = tracker.counters
        self._transport: asyncio.Transport | None = None
        self._stopping = False

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None, "not connected"
        return self._transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        self._tracker.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # Resets and abrupt disconnects are routine for a network server.
        if exc is not None:
            logger.debug("connection lost: %r", exc)
        self._tracker.closed(self)

    def pause_writing(self) -> None:
        # The peer is not reading its replies: stop reading its requests, so
        # that the replies we owe it cannot grow without bound.
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self._stopping:
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        # Returning False lets the transport close once the replies are flushed.
        return False

    def close_gracefully(self) -> None:
        """Stop reading; close once every reply already written is flushed."""
        self._stopping = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping any reply not yet sent."""
        if self._transport is not None:
            self._transport.abort()

    def _send(self, reply: bytes | bytearray, messages: int) -> None:
        self.transport.write(reply)
        counters = self._counters
        counters.bytes_out += len(reply)
        counters.messages += messages


class ChunkEchoProtocol(EchoProtocol):
    """The tutorial's selectors server: each read is answered as a whole."""

    def __init__(self, tracker: ConnectionTracker, suffix: bytes) -> None:
        super().__init__(tracker)
        self._suffix = suffix

    def data_received(self, data: bytes) -> None:
        self._counters.bytes_in += len(data)
        self._send(data.upper() + self._suffix, 1)


class LineEchoProtocol(EchoProtocol):
    """Line framing: one reply per line, in order, however TCP cut the stream."""

    def __init__(self, tracker: ConnectionTracker, echo: LineEcho) -> None:
        super().__init__(tracker)
        self._echo = echo
        self._partial = bytearray()  # an unterminated line awaiting its LF
        self._failed = False

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return
        self._counters.bytes_in += len(data)
        buffer: bytes | bytearray = data
        if self._partial:
            self._partial += data
            buffer = self._partial
        end = buffer.rfind(b"\n") + 1
        if end and not self._answer(buffer[:end] if end < len(buffer) else buffer):
            return
        if buffer is self._partial:
            del self._partial[:end]
        elif end < len(data):
            self._partial += data[end:]
        if self._echo.partial_too_long(self._partial):
            self._fail(b"")

    def eof_received(self) -> bool:
        if self._partial and not self._failed:
            self._send(self._echo.partial(self._partial), 1)
            self._partial.clear()
        return False

    def _answer(self, complete: bytes | bytearray) -> bool:
        """Write the replies to whole lines; False if one was too long."""
        echo = self._echo
        bad = echo.first_too_long(complete)
        if bad < 0:
            self._send(echo.lines(complete), complete.count(b"\n"))
            return True
        good = complete[:bad]
        self._fail(echo.lines(good) if good else b"", good.count(b"\n"))
        return False

    def _fail(self, replies: bytes | bytearray, messages: int = 0) -> None:
        """Answer what came before the overlong line, then the error, then close."""
        self._failed = True
        self._partial.clear()
        self._counters.closed[CloseReason.LINE_TOO_LONG] += 1
        self._send(replies + self._echo.too_long_error, messages)
        self.transport.close()
