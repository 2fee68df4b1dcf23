"""The per-connection protocols: framing, backpressure and the error path."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from .connections import ConnectionTracker, Timeouts
from .framing import LineEcho, upper
from .sockets import kernel_unsent
from .stats import CloseReason

logger = logging.getLogger("aioecho")

# Explicit on both loops: uvloop's default low-water mark is 16 bytes and
# asyncio's 16 KiB. A peer that never reads can pin at most about this much
# reply data in the server before its reading is paused.
WRITE_HIGH_WATER = 64 * 1024
WRITE_LOW_WATER = 16 * 1024

LF = ord("\n")

MAX_CONNECTIONS_ERROR = b"ERR max connections reached\n"
IDLE_TIMEOUT_ERROR = b"ERR idle timeout\n"

# How long a connection closed for a protocol error keeps draining its peer's
# input so that its last replies and the error line are not lost to a reset.
ERROR_LINGER_SECONDS = 2.0


class EchoProtocol(asyncio.BufferedProtocol):
    """What every echo connection shares: bookkeeping, backpressure, closing.

    A BufferedProtocol: the stdlib loop's plain ``data_received`` path
    allocates a 256 KiB bytes object per read, which costs it about two thirds
    of its throughput. All connections read into their server's one buffer,
    which is safe because each read is consumed before the next one starts.
    """

    __slots__ = (
        "_answering",
        "_blocked_since",
        "_counters",
        "_linger_timer",
        "_quiet_sweeps",
        "_receive_buffer",
        "_receive_view",
        "_tracker",
        "_transport",
        "_write",
    )

    def __init__(self, tracker: ConnectionTracker) -> None:
        self._tracker = tracker
        self._counters = tracker.counters
        self._receive_buffer = tracker.receive_buffer
        self._receive_view = tracker.receive_view
        self._transport: asyncio.Transport | None = None
        self._answering = True  # False once closing: later input is discarded
        self._linger_timer: asyncio.TimerHandle | None = None
        self._quiet_sweeps = 0  # timeout sweeps since the last read
        self._blocked_since: float | None = None  # when the peer stopped taking replies

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None, "not connected"
        return self._transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._write = self._transport.write  # bound once: it runs for every read
        self._transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        if not self._answering:  # the server began to stop while this one was admitted
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # Resets and abrupt disconnects are routine for a network server.
        if exc is not None:
            logger.debug("connection lost: %r", exc)
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self._tracker.closed(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receive_view

    def buffer_updated(self, nbytes: int) -> None:
        self._quiet_sweeps = 0
        self.data_received(self._receive_buffer[:nbytes])

    def data_received(self, data: bytes | bytearray) -> None:
        raise NotImplementedError

    def pause_writing(self) -> None:
        # The peer is not reading its replies: stop reading its requests, so
        # that the replies we owe it cannot grow without bound.
        self._blocked_since = asyncio.get_running_loop().time()
        if self._answering:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._blocked_since = None
        if self._answering:
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        # Returning False lets the transport close once the replies are flushed.
        return False

    def close_gracefully(self) -> None:
        """Answer nothing more, deliver every reply already owed, then close."""
        self._close_after_replies(linger=None)

    def abort(self) -> None:
        """Close at once, dropping any reply not yet sent."""
        if self._transport is not None:
            self._transport.abort()

    def sweep(self, now: float, timeouts: Timeouts) -> None:
        """Close the connection if it idled or its replies stalled too long.

        Called for every connection once per sweep interval, so a read costs
        only the reset of a counter instead of rescheduling a timer.
        """
        if not self._answering or self._transport is None:
            return
        if self._blocked_since is None:
            self._quiet_sweeps += 1
            if timeouts.idle_sweeps and self._quiet_sweeps > timeouts.idle_sweeps:
                self._refuse(CloseReason.IDLE_TIMEOUT, IDLE_TIMEOUT_ERROR)
        elif timeouts.write_timeout and now - self._blocked_since >= timeouts.write_timeout:
            # The peer reads nothing, so no error line could reach it.
            self._counters.rejected[CloseReason.WRITE_TIMEOUT] += 1
            self._answering = False
            self.transport.abort()

    def _refuse(self, reason: CloseReason, error: bytes, replies: bytes | bytearray = b"") -> None:
        """Send the replies still due, then the error line, then close: the ERR path."""
        self._counters.rejected[reason] += 1
        self._send(replies + error, replies.count(b"\n"))
        self._close_after_replies(linger=ERROR_LINGER_SECONDS)

    def _close_after_replies(self, linger: float | None) -> None:
        """Stop answering and close once the replies already written are delivered.

        Closing a socket whose receive queue holds unread data makes the
        kernel reset the connection and drop the replies it has not sent yet.
        So, unless nothing is owed, this is a lingering close: end our side
        after the owed replies (FIN), drain and discard what the peer still
        sends, and close when the peer closes too, or abort after ``linger``
        seconds (None: when the server's shutdown grace runs out).
        """
        self._answering = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not transport.can_write_eof() or self._nothing_owed():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        if linger is not None:
            self._linger_timer = asyncio.get_running_loop().call_later(linger, transport.abort)

    def _nothing_owed(self) -> bool:
        transport = self.transport
        return transport.get_write_buffer_size() == 0 and kernel_unsent(transport) == 0

    def _send(self, reply: bytes | bytearray, messages: int) -> None:
        self._write(reply)
        counters = self._counters
        counters.bytes_out += len(reply)
        counters.messages += messages


class ChunkEchoProtocol(EchoProtocol):
    """The tutorial's selectors server: each read is answered as a whole."""

    __slots__ = ("_suffix", "_unicode")

    def __init__(self, tracker: ConnectionTracker, suffix: bytes, unicode: bool = False) -> None:
        super().__init__(tracker)
        self._suffix = suffix
        self._unicode = unicode

    def data_received(self, data: bytes | bytearray) -> None:
        self._counters.bytes_in += len(data)
        if self._answering:
            self._send(upper(data, self._unicode) + self._suffix, 1)


class LineEchoProtocol(EchoProtocol):
    """Line framing: one reply per line, in order, however TCP cut the stream."""

    __slots__ = ("_echo", "_echo_lines", "_partial", "_short_read")

    def __init__(self, tracker: ConnectionTracker, echo: LineEcho) -> None:
        super().__init__(tracker)
        self._echo = echo
        self._echo_lines = echo.bound_lines  # shared, not a bound method per connection
        # An unterminated line awaiting its LF; most connections never hold
        # one, so they share the empty bytes instead of owning a bytearray.
        self._partial: bytes | bytearray = b""
        self._short_read = echo.max_line + 1  # no read this long can hold an overlong line

    def buffer_updated(self, nbytes: int) -> None:
        self._quiet_sweeps = 0
        data = self._receive_buffer[:nbytes]
        # Ping-pong traffic nearly always takes this path: a short read that
        # ends on a line boundary with nothing held over from the last one.
        if nbytes <= self._short_read and data[-1] == LF and not self._partial and self._answering:
            self._counters.bytes_in += nbytes
            self._send(self._echo_lines(data), data.count(b"\n"))
        else:
            self.data_received(data)

    def data_received(self, data: bytes | bytearray) -> None:
        self._counters.bytes_in += len(data)
        if not self._answering:
            return
        buffer: bytes | bytearray = data
        if self._partial:
            self._partial += data
            buffer = self._partial
        end = buffer.rfind(b"\n") + 1
        if end and not self._answer(buffer[:end] if end < len(buffer) else buffer):
            return
        # A bytearray, so that a line arriving in many pieces grows in place.
        self._partial = bytearray(buffer[end:]) if end < len(buffer) else b""
        if self._echo.partial_too_long(self._partial):
            self._fail()

    def eof_received(self) -> bool:
        if self._partial and self._answering:
            self._send(self._echo.partial(self._partial), 1)
            self._partial = b""
        return False

    def _answer(self, complete: bytes | bytearray) -> bool:
        """Write the replies to whole lines; False if one was too long."""
        echo = self._echo
        bad = echo.first_too_long(complete)
        if bad < 0:
            self._send(echo.lines(complete), complete.count(b"\n"))
            return True
        good = complete[:bad]
        self._fail(echo.lines(good) if good else b"")
        return False

    def _fail(self, replies: bytes | bytearray = b"") -> None:
        """Answer what came before the overlong line, then the error, then close."""
        self._partial = b""
        self._refuse(CloseReason.LINE_TOO_LONG, self._echo.too_long_error, replies)
