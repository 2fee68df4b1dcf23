"""The per-connection protocols: framing, backpressure, fairness and the error path.

Each protocol is an extension type when compiled (``protocol.pxd``: its
state in C fields, its per-read work in C), mixed into
``asyncio.BufferedProtocol`` by a Python subclass, since an extension type
cannot derive from a Python class.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from .connections import ConnectionTracker, Timeouts
from .counters import CloseReason
from .framing import LF_CODE, LineEcho, upper
from .kernel import kernel_unread, kernel_unsent
from .sink import ReplySink

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from . import nocython as cython

logger = logging.getLogger("aioecho")

# Explicit on both loops: uvloop's default low-water mark is 16 bytes and
# asyncio's 16 KiB. Input is answered only while the unsent replies are under
# the high-water mark; the rest waits, unanswered, until the peer reads.
WRITE_HIGH_WATER = 64 * 1024
WRITE_LOW_WATER = 16 * 1024

# The most reply bytes one connection produces in one loop turn (unless a
# single line's reply is longer). It bounds both the replies a peer that
# never reads can pin beyond the high-water mark and a pipelining client's
# share of the loop, whatever the suffix multiplies: with a 60-byte suffix,
# 64 KiB of empty lines would otherwise owe 3.9 MB at once. With the
# default suffix a whole read still fits in one slice.
REPLY_SLICE = 128 * 1024

# TLS: the SSL layer reads on into its own buffer of encrypted input while
# the connection has paused reading, up to its high-water mark (256 KiB by
# default on both loops) plus one read; 64 KiB bounds it as the replies are.
TLS_READ_HIGH_WATER = 64 * 1024
TLS_READ_LOW_WATER = 16 * 1024

# What the SSL layer holds for a TLS connection that holds anything, besides
# its encrypted input (counted as it is): its read buffer (256 KiB on both
# loops: asyncio fills it with zeros at once, uvloop's pages fill as reads
# do) and the encrypted replies its socket transport buffers before it
# pauses (64 KiB). An idle connection's are left out, like its other fixed
# costs (docs/limits.md, "The memory budget").
TLS_LAYER_HELD = (256 + 64) * 1024


# Makes the sink of a new connection, given the connection (None: replies
# go straight to the transport).
SinkFactory = Callable[["EchoConnection"], ReplySink]

MAX_CONNECTIONS_ERROR = b"ERR max connections reached\n"
MAX_CONNECTIONS_PER_IP_ERROR = b"ERR too many connections from your address\n"
IDLE_TIMEOUT_ERROR = b"ERR idle timeout\n"
LINE_TIMEOUT_ERROR = b"ERR line timeout\n"
CLIENT_MEMORY_ERROR = b"ERR client memory limit\n"

# How long a connection closed for a protocol error keeps draining its peer's
# input so that its last replies and the error line are not lost to a reset.
ERROR_LINGER_SECONDS = 2.0


class EchoConnection:
    """What every echo connection shares: bookkeeping, backpressure, fairness, closing.

    A buffered protocol: the stdlib loop's plain ``data_received`` path
    allocates a 256 KiB bytes object per read, which costs it about two thirds
    of its throughput. All connections read into their server's one buffer,
    which is safe because each read is consumed before the next one starts.
    """

    __slots__ = (
        "_answering",
        "_blocked_since",
        "_counters",
        "_heard",
        "_heard_at",
        "_input_ended",
        "_line_started",
        "_linger_timer",
        "_receive_buffer",
        "_receive_view",
        "_sink",
        "_tls_incoming",
        "_tracker",
        "_transport",
        "_turn_taken",
        "_write",
    )

    def __init__(self, tracker: ConnectionTracker, sink: SinkFactory | None = None) -> None:
        self._tracker = tracker
        self._counters = tracker.counters
        self._receive_buffer = tracker.receive_buffer
        self._receive_view = tracker.receive_view
        self._transport: asyncio.Transport | None = None
        self._answering = True  # False once closing: later input is discarded
        self._linger_timer: asyncio.TimerHandle | None = None
        self._heard = False  # a read since the last timeout sweep
        self._heard_at = 0.0  # when a sweep last saw that the peer had sent something
        self._blocked_since: float | None = None  # when the peer stopped taking replies
        self._line_started: float | None = None  # when the unterminated line began
        self._turn_taken = False  # reading paused until the next loop turn
        self._input_ended = False  # the peer ended its input: nothing left to drain
        self._sink: ReplySink | None = None if sink is None else sink(self)
        self._tls_incoming: Callable[[], int] | None = None  # the SSL layer's input, if TLS

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None, "not connected"
        return self._transport

    @property
    def writing_blocked(self) -> bool:
        """Whether the peer has stopped taking replies (the transport paused writing)."""
        return self._blocked_since is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._write = self._transport.write  # bound once: it runs for every read
        self._transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        if self._transport.get_extra_info("ssl_object") is not None:
            self._limit_tls_reading()
        self._heard_at = self._tracker.clock()
        if not self._answering:  # the server began to stop while this one was admitted
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # Resets and abrupt disconnects are routine for a network server.
        if exc is not None:
            logger.debug("connection lost: %r", exc)
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        if self._sink is not None:
            self._sink.discard()
        self._tracker.closed(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receive_view

    def buffer_updated(self, nbytes: int) -> None:
        self._heard = True
        self.data_received(self._receive_buffer[:nbytes])
        if nbytes == len(self._receive_buffer):
            self._end_turn()

    def data_received(self, data: bytes | bytearray) -> None:
        raise NotImplementedError

    def pause_writing(self) -> None:
        # The peer is not reading its replies: stop reading its requests, so
        # that the replies we owe it cannot grow without bound.
        self._blocked_since = self._tracker.clock()
        if self._answering:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._blocked_since = None
        self._next_turn()
        if self._sink is not None:
            self._sink.flush()

    def eof_received(self) -> bool:
        # Returning False lets the transport close once the replies are flushed.
        self._input_ended = True
        return self._keep_open_for_sink()

    def close_gracefully(self) -> None:
        """Answer nothing more, deliver every reply already owed, then close."""
        self.close_after_replies(linger=None)

    def abort(self) -> None:
        """Close at once, dropping any reply not yet sent."""
        if self._transport is not None:
            self._transport.abort()

    def sweep(self, now: float, timeouts: Timeouts) -> None:
        """Apply the time limits, and report the bytes held to the memory budget.

        Called for every connection once per sweep interval, so a read costs
        only setting a flag instead of rescheduling a timer.
        """
        if self._sink is not None:
            self._sink.flush()  # replies due by the server's clock, which may be a test's
        if not self._answering or self._transport is None:
            return
        if self._heard:
            self._heard = False
            self._heard_at = now
        if self._blocked_since is not None:
            if timeouts.write and now - self._blocked_since >= timeouts.write:
                return self._cut_off(CloseReason.WRITE_TIMEOUT)
        elif timeouts.idle and now - self._heard_at >= timeouts.idle:
            return self._refuse(CloseReason.IDLE_TIMEOUT, IDLE_TIMEOUT_ERROR)
        elif self._line_overdue(now, timeouts.line):
            return self._refuse(CloseReason.LINE_TIMEOUT, LINE_TIMEOUT_ERROR)
        self.account()  # unsent replies drain unseen: refresh them once per sweep

    def shed_memory(self) -> None:
        """Refuse the connection to bring the server back under its memory budget."""
        if self._sink is not None:
            self._sink.discard()  # the replies held are what the budget wants back
        if self._blocked_since is not None:
            self._cut_off(CloseReason.CLIENT_MEMORY)  # its replies are what it holds
        else:
            self._refuse(CloseReason.CLIENT_MEMORY, CLIENT_MEMORY_ERROR)

    def account(self) -> None:
        """Report what the connection holds while it answers; this may shed it (or others)."""
        if self._answering:
            held = self._held()
            if held and self._tls_incoming is not None:
                held += self._tls_incoming() + TLS_LAYER_HELD
            self._tracker.hold(self, held)

    def answer_more(self) -> None:
        """Go on answering: the sink takes replies again."""
        self._next_turn()

    def stop_answering(self) -> None:
        """Answer nothing more and drop unanswered input."""
        self._answering = False
        self._line_started = None

    def close_after_replies(self, linger: float | None) -> None:
        """Stop answering and close once the replies already written are delivered.

        Closing a socket whose receive queue holds unread data makes the
        kernel reset the connection and drop the replies it has not sent yet.
        So, unless nothing is owed, this is a lingering close: end our side
        after the owed replies (FIN), drain and discard what the peer still
        sends, and close when the peer closes too, or abort after ``linger``
        seconds (None: when the server's shutdown grace runs out). Replies a
        sink still holds are written first.
        """
        self.stop_answering()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._sink is not None and self._sink.close_when_flushed(linger):
            if not self._input_ended:
                transport.resume_reading()  # drain and discard the peer's input meanwhile
            return
        if self._input_ended or not transport.can_write_eof() or self._nothing_owed():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        if linger is not None:
            self._linger_timer = asyncio.get_running_loop().call_later(linger, transport.abort)

    def _limit_tls_reading(self) -> None:
        """Bound the SSL layer's reading ahead, and count what it holds."""
        # Both loops' SSL transports have these, unlike the plain ones.
        transport = cast(asyncio.Transport, self._transport)
        transport.set_read_buffer_limits(high=TLS_READ_HIGH_WATER, low=TLS_READ_LOW_WATER)  # type: ignore[attr-defined]
        self._tls_incoming = transport.get_read_buffer_size  # type: ignore[attr-defined]

    def _keep_open_for_sink(self) -> bool:
        """At the end of input: whether the transport must stay open for a sink's replies."""
        if self._sink is None or not self._sink.close_when_flushed(None):
            return False
        self.stop_answering()
        return True

    def _line_overdue(self, now: float, line_timeout: float) -> bool:
        started = self._line_started
        return bool(line_timeout) and started is not None and now - started >= line_timeout

    def _held(self) -> int:
        """Bytes this connection holds in the server: unanswered input, unsent replies."""
        held = self.transport.get_write_buffer_size()
        return held if self._sink is None else held + self._sink.held()

    def _end_turn(self) -> None:
        """Read no more from this connection until every other one has had its turn."""
        if self._answering and not self._turn_taken:
            self._turn_taken = True
            self.transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """Go on where the last turn ended: read again unless the peer is not reading."""
        self._turn_taken = False
        if self._answering and self._blocked_since is None:
            self.transport.resume_reading()

    def _pause_reading(self) -> None:
        if self._answering and self._transport is not None:
            self._transport.pause_reading()

    def _cut_off(self, reason: CloseReason) -> None:
        """Close at once a connection whose peer reads nothing: no error line could reach it."""
        self._counters.rejected[reason] += 1
        self.stop_answering()
        self.transport.abort()

    def _refuse(self, reason: CloseReason, error: bytes, replies: bytes | bytearray = b"") -> None:
        """Send the replies still due, then the error line, then close: the ERR path."""
        self._counters.rejected[reason] += 1
        self.stop_answering()
        if self._sink is not None:
            self._sink.write(replies, error)  # the replies suffer their faults, the error not
        else:
            self._send(replies + error, replies.count(b"\n"))
        self.close_after_replies(linger=ERROR_LINGER_SECONDS)

    def _nothing_owed(self) -> bool:
        """Nothing left to deliver, and no unread input whose close would reset the peer."""
        transport = self.transport
        return (
            transport.get_write_buffer_size() == 0
            and kernel_unsent(transport) == 0
            and kernel_unread(transport) == 0
        )

    def _send(self, reply: bytes | bytearray, messages: int) -> None:
        if self._sink is not None:
            return self._sink.write(reply)
        self._write(reply)
        counters = self._counters
        counters.bytes_out += len(reply)
        counters.messages += messages


class ChunkConnection(EchoConnection):
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


class LineConnection(EchoConnection):
    """Line framing: one reply per line, in order, however TCP cut the stream.

    Input not answered yet is held in ``_pending``: whole lines waiting for
    the peer to take its replies (the first ``_owed`` bytes), then the start
    of a line whose LF has not come. Only a read that finds nothing held and
    ends on a line boundary is answered at once, without copying.
    """

    __slots__ = (
        "_echo",
        "_fast_limit",
        "_fast_read",
        "_line_growth",
        "_owed",
        "_pending",
    )

    def __init__(
        self, tracker: ConnectionTracker, echo: LineEcho, sink: SinkFactory | None = None
    ) -> None:
        super().__init__(tracker, sink)
        self._echo = echo
        self._line_growth = echo.exact_growth
        # Most connections never hold input, so they share the empty bytes
        # instead of owning a bytearray.
        self._pending: bytes | bytearray = b""
        self._owed = 0
        # The longest read answered at once: it can neither hold an overlong
        # line nor owe more than a slice of replies. 0 with a sink: every
        # reply goes through it.
        self._fast_read = 0 if sink is not None else min(echo.max_line + 1, slice_input(echo))
        self._fast_limit = self._fast_read  # 0 while anything is held or closing

    def buffer_updated(self, nbytes: int) -> None:
        self._heard = True
        buffer = self._receive_buffer
        # Ping-pong traffic nearly always takes this path: a short read that
        # ends on a line boundary with nothing held over from the last one.
        if nbytes <= self._fast_limit and buffer[nbytes - 1] == LF_CODE:
            # _send() and echo.count_lines() inlined: at this size a Python
            # call costs as much as the kernel's share of the round trip.
            if cython.compiled:
                reply = self._echo.read_replies(buffer, nbytes)
            else:  # read_replies() would call lines(): one Python call saved
                reply = self._echo.lines(buffer[:nbytes])
            self._write(reply)
            counters = self._counters
            counters.bytes_in += nbytes
            counters.bytes_out += len(reply)
            per_line = self._line_growth
            if per_line:
                counters.messages += (len(reply) - nbytes) // per_line
            else:
                counters.messages += buffer.count(LF_CODE, 0, nbytes)
            return
        self.data_received(buffer[:nbytes])
        if nbytes == len(buffer):
            self._end_turn()

    def data_received(self, data: bytes | bytearray) -> None:
        self._counters.bytes_in += len(data)
        if not self._answering:
            return
        if self._pending:
            self._append(data)
        else:
            self._hold(data)
        self._answer_owed(False)
        self.account()

    def eof_received(self) -> bool:
        self._input_ended = True
        if self._answering:  # owed lines are at most one read's: answer them all now
            self._answer_owed(True)
        if self._pending and self._answering:
            self._send(self._echo.partial(self._pending), 1)
            self._pending = b""
        return self._keep_open_for_sink()

    def stop_answering(self) -> None:
        EchoConnection.stop_answering(self)
        self._pending = b""
        self._owed = 0
        self._fast_limit = 0

    def _hold(self, data: bytes | bytearray) -> None:
        """Hold ``data``, found with nothing held: its whole lines are owed, the rest waits."""
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self._line_started = self._tracker.clock()
        # A read arrives as a fresh bytearray: held as it is, not copied.
        self._pending = data if isinstance(data, bytearray) else bytearray(data)
        self._owed = end
        self._fast_limit = 0

    def _append(self, data: bytes | bytearray) -> None:
        """Add ``data`` to what is held; only the new bytes are searched and copied."""
        last = data.rfind(b"\n")
        before = len(self._pending)
        self._pending += data  # a bytearray: amortised linear however the line trickles in
        if last >= 0:
            self._owed = before + last + 1
            has_tail = last + 1 < len(data)
            self._line_started = self._tracker.clock() if has_tail else None
        elif before == self._owed:  # only whole lines were held: a new line begins
            self._line_started = self._tracker.clock()

    def _next_turn(self) -> None:
        self._turn_taken = False
        if self._answering and self._blocked_since is None:
            self._answer_owed(False)
        self.account()

    def _answer_owed(self, everything: bool) -> None:
        """Answer a slice of the owed lines, then read on only if nothing more is owed.

        A client that pipelines or amplifies so gets one slice per loop turn,
        and what it holds stays bounded. ``everything``: answer all owed
        lines now, at the end of input. A sink may hold answering off.
        """
        if self._sink is not None and not self._sink.accepts(everything):
            return self._pause_reading()  # the sink calls answer_more() when it takes more
        while self._owed and self._answering and (everything or self._blocked_since is None):
            pending = self._pending
            end = self._slice_end()
            if not self._answer(pending if end == len(pending) else pending[:end]):
                return
            # O(1): a bytearray drops its head by moving its start. Never the
            # shared empty bytes here: owed lines are held in a bytearray.
            del cast(bytearray, pending)[:end]
            self._owed -= end
            if not everything:
                break
        if self._answering:
            self._settle()

    def _settle(self) -> None:
        """After answering: wait a turn if lines are still owed, else check the held line."""
        if self._sink is not None and not self._sink.accepts(True):
            return self._pause_reading()  # the line just answered stalled it: read no further
        if self._owed:
            return self._end_turn()
        pending = self._pending
        if not pending:
            self._pending = b""  # give the buffer back
            self._line_started = None
            self._fast_limit = self._fast_read
        elif len(pending) > self._echo.max_line and self._echo.partial_too_long(pending):
            return self._fail(b"")
        if self._blocked_since is None and not self._turn_taken:
            self.transport.resume_reading()

    def _slice_end(self) -> int:
        """Where this turn's slice of owed lines ends.

        Whole lines, and replies of at most a slice unless one line is longer.
        """
        pending, owed, reach = self._pending, self._owed, slice_input(self._echo)
        if owed <= reach:
            return owed
        return pending.rfind(b"\n", 0, reach) + 1 or pending.find(b"\n", reach) + 1

    def _answer(self, complete: bytes | bytearray) -> bool:
        """Write the replies to whole lines; False if one was too long."""
        echo = self._echo
        bad = echo.first_too_long(complete)
        if bad < 0:
            replies = echo.lines(complete)
            self._send(replies, echo.count_lines(complete, replies))
            return True
        good = complete[:bad]
        self._fail(echo.lines(good) if good else b"")
        return False

    def _fail(self, replies: bytes | bytearray) -> None:
        """Answer what came before the overlong line, then the error, then close."""
        self._refuse(CloseReason.LINE_TOO_LONG, self._echo.too_long_error, replies)

    def _held(self) -> int:
        return len(self._pending) + EchoConnection._held(self)


class ChunkEchoProtocol(ChunkConnection, asyncio.BufferedProtocol):
    """Chunk framing as an asyncio protocol."""

    __slots__ = ()


class LineEchoProtocol(LineConnection, asyncio.BufferedProtocol):
    """Line framing as an asyncio protocol."""

    __slots__ = ()


def slice_input(echo: LineEcho) -> int:
    """The most input answered in one turn: its replies fit in a slice even if
    every byte is a line of its own."""
    return max(REPLY_SLICE // echo.most_growth, 1)


EchoProtocol = ChunkEchoProtocol | LineEchoProtocol
