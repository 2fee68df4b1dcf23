"""Line framing with faults: a connection gets this protocol only when a fault is on.

The plain :class:`~aioecho.protocol.LineEchoProtocol` writes each reply as
soon as it is made. Here every reply goes to an outbox first, one entry per
line, each with the time it is due; a pump writes the outbox to the
transport in order, as the delays, the rate limit and the fragment gaps
allow. Everything the plain protocol guarantees still holds:

- the outbox counts as held memory, and a connection stops answering (and
  reading) while its outbox is over the write high-water mark, as it does
  while its transport is;
- a stalled connection reads nothing, so the idle and line timeouts still
  close it, and shutdown closes it like any other;
- a close (an error line, a timeout, shutdown, the peer's end of input)
  waits for the replies already in the outbox, as it waits for those
  already written.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator

from .connections import ConnectionTracker
from .faults import FaultPlan, Verdict
from .framing import LineEcho
from .protocol import (
    ERROR_LINGER_SECONDS,
    WRITE_HIGH_WATER,
    WRITE_LOW_WATER,
    LineEchoProtocol,
)
from .stats import Fault

# The pause between two pieces of a fragmented reply: long enough for a
# client reading promptly on loopback to take each piece in its own read.
FRAGMENT_GAP = 0.002

# A rate-limited reply goes out in pieces of this many seconds' worth of
# bytes, so the rate holds within a reply, not only between replies.
BANDWIDTH_TICK = 0.01

# The shortest wait the pump schedules: uvloop's timers have millisecond
# resolution and may fire a little early, and a reply must never be early.
MIN_WAIT = 0.001

# SO_LINGER on, with a zero timeout: close() then sends a reset.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)

LF = b"\n"

# An outbox entry: when it is due (time.monotonic()), and the bytes to write,
# or None for a reset.
Outgoing = tuple[float, bytes | None]


class FaultyLineEchoProtocol(LineEchoProtocol):
    """Line framing whose replies suffer the faults of a :class:`FaultPlan`."""

    __slots__ = (
        "_close_linger",
        "_close_pending",
        "_faults",
        "_gated",
        "_lines",
        "_next_write",
        "_outbox",
        "_outbox_bytes",
        "_peer_done",
        "_pump_handle",
        "_random",
        "_sent",
        "_silent",
    )

    def __init__(
        self,
        tracker: ConnectionTracker,
        echo: LineEcho,
        faults: FaultPlan,
        generators: Iterator[random.Random],
    ) -> None:
        super().__init__(tracker, echo)
        # Never the short path: every reply must pass through the outbox.
        self._fast_read = self._fast_limit = 0
        self._faults = faults
        self._random = next(generators)  # this connection's draws
        self._outbox: deque[Outgoing] = deque()
        self._outbox_bytes = 0
        self._pump_handle: asyncio.Handle | None = None
        self._next_write = 0.0  # when the rate limit or fragment gap lets the next piece go
        self._lines = 0  # lines whose fate has been decided
        self._sent = 0  # bytes written, for close_after
        self._silent = False  # stalled, or a reset is on its way: answer nothing more
        self._gated = False  # not answering while the outbox is full
        self._peer_done = False  # the peer ended its input
        self._close_pending = False  # close once the outbox is written
        self._close_linger: float | None = None

    # -- replies into the outbox ---------------------------------------------

    def _send(self, reply: bytes | bytearray, messages: int) -> None:
        for line_reply in _replies(reply):
            self._decide(line_reply)

    def _send_refusal(self, replies: bytes | bytearray, error: bytes) -> None:
        # The replies owed before the error suffer their faults; the error
        # line itself is the server's own word and goes out undelayed.
        self._send(replies, 0)
        self._enqueue(error, 0.0)

    def _decide(self, reply: bytes) -> None:
        """Decide one line's fate, in a fixed order of draws, and queue what it gets."""
        if self._silent:
            return
        faults, counters = self._faults, self._counters.faults
        if faults.stall_after is not None and self._lines >= faults.stall_after:
            return self._stall()
        self._lines += 1
        verdict = faults.verdict(self._random)
        if verdict is Verdict.DROP:
            counters[Fault.DROP] += 1
            return
        if verdict is Verdict.RESET:
            self._silent = True
            self._enqueue(None, 0.0)
            return
        delay, jitter = faults.delay(self._random), faults.extra_delay(self._random)
        counters[Fault.DELAY] += delay > 0
        counters[Fault.JITTER] += jitter > 0
        counters[Fault.BANDWIDTH] += faults.bandwidth > 0
        counters[Fault.FRAGMENT] += 0 < faults.fragment < len(reply)
        self._counters.messages += 1
        self._enqueue(reply, delay + jitter)

    def _enqueue(self, data: bytes | None, delay: float) -> None:
        # The pump writes the outbox in order, so a reply due early waits for
        # the delayed ones ahead of it: replies keep the order of their lines.
        self._outbox.append((time.monotonic() + delay, data))
        self._outbox_bytes += len(data) if data else 0
        if self._pump_handle is None:
            # Never written from here: a reset or a close must not happen in
            # the middle of answering a slice of lines.
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def _stall(self) -> None:
        self._silent = True
        self._counters.faults[Fault.STALL_AFTER] += 1
        self._pause_reading()

    # -- answering, gated by the outbox --------------------------------------

    def _answer_owed(self, everything: bool = False) -> None:
        if self._silent:
            return self._pause_reading()
        if not everything and self._outbox_bytes >= WRITE_HIGH_WATER:
            self._gated = True  # the pump answers again once the outbox drains
            return self._pause_reading()
        super()._answer_owed(everything)

    def _settle(self) -> None:
        if self._silent:  # the line that stalled it was just answered: read no further
            return self._pause_reading()
        super()._settle()

    def _pause_reading(self) -> None:
        if self._answering and self._transport is not None:
            self._transport.pause_reading()

    def _held(self) -> int:
        return self._outbox_bytes + super()._held()

    # -- the pump: outbox to transport ---------------------------------------

    def _pump(self) -> None:
        self._pump_handle = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._flush()
        if transport.is_closing():
            return
        if self._close_pending:
            if not self._outbox:
                self._close_pending = False
                self._close_now()
        elif self._gated and self._outbox_bytes < WRITE_LOW_WATER:
            self._gated = False
            self._next_turn()
        if self._answering:
            self._account()  # what the outbox gave back, counted at once

    def _flush(self) -> None:
        """Write what is due, piece by piece; schedule the pump for the rest."""
        outbox, transport = self._outbox, self.transport
        # Stop when the peer does not read (resume_writing pumps again) or is gone.
        while outbox and self._blocked_since is None and not transport.is_closing():
            due, data = outbox[0]
            now = time.monotonic()
            wait = max(due, self._next_write) - now
            if wait > 0:
                self._pump_handle = asyncio.get_running_loop().call_later(
                    max(wait, MIN_WAIT), self._pump
                )
                return
            if data is None:
                return self._reset()
            if not self._write_piece(now):
                return

    def _write_piece(self, now: float) -> bool:
        """Write the next piece of what is due; False once the connection is closed."""
        faults = self._faults
        piece = self._take(self._piece_limit(), now)
        if piece:
            self._write(piece)
            self._counters.bytes_out += len(piece)
            self._sent += len(piece)
            self._outbox_bytes -= len(piece)
        if faults.close_after is not None and self._sent >= faults.close_after:
            self._close_at_limit()
            return False
        if faults.bandwidth:
            self._next_write = max(self._next_write, now) + len(piece) / faults.bandwidth
        if faults.fragment:
            self._next_write = max(self._next_write, now + FRAGMENT_GAP)
        return True

    def _piece_limit(self) -> int:
        """The most bytes the next write may take."""
        faults = self._faults
        limit = faults.fragment or WRITE_HIGH_WATER
        if faults.bandwidth:
            limit = min(limit, max(1, int(faults.bandwidth * BANDWIDTH_TICK)))
        if faults.close_after is not None:
            limit = min(limit, faults.close_after - self._sent)
        return limit

    def _take(self, limit: int, now: float) -> bytes:
        """Up to ``limit`` bytes of the replies due, from the head of the outbox.

        Replies due together go out in one write; a fragmented reply's
        pieces never take bytes of the next reply.
        """
        outbox = self._outbox
        parts: list[bytes] = []
        size = 0
        while outbox and size < limit:
            due, data = outbox[0]
            if data is None or due > now or (parts and self._faults.fragment):
                break
            room = limit - size
            if len(data) > room:
                outbox[0] = (due, data[room:])
                data = data[:room]
            else:
                outbox.popleft()
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def _reset(self) -> None:
        """Reset the connection (SO_LINGER 0, then close) in place of a reply."""
        self._counters.faults[Fault.RESET] += 1
        self._drop_outbox()
        self._stop_answering()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # a peer gone already resets nothing
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        self.transport.abort()

    def _close_at_limit(self) -> None:
        """close_after: the byte limit is reached; close as toxiproxy's limit_data does."""
        self._counters.faults[Fault.CLOSE_AFTER] += 1
        self._drop_outbox()
        self._close_pending = False
        self._close_after_replies(ERROR_LINGER_SECONDS)  # nothing in the outbox: at once

    def _drop_outbox(self) -> None:
        self._outbox.clear()
        self._outbox_bytes = 0

    # -- closing waits for the outbox ----------------------------------------

    def _close_after_replies(self, linger: float | None) -> None:
        if not self._outbox:
            return super()._close_after_replies(linger)
        self._stop_answering()
        self._close_pending = True
        self._close_linger = linger
        if self._transport is not None:
            self._transport.resume_reading()  # drain and discard the peer's input meanwhile

    def _close_now(self) -> None:
        """Close once the outbox is written, as the close asked for was meant to."""
        if self._peer_done:  # nothing left to read, so nothing to drain
            self.transport.close()
        else:
            super()._close_after_replies(self._close_linger)

    def eof_received(self) -> bool:
        self._peer_done = True
        super().eof_received()
        if not self._outbox:
            return False
        self._stop_answering()
        self._close_pending = True
        return True  # keep the transport until the outbox is written

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._outbox and self._pump_handle is None:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def shed_memory(self) -> None:
        self._drop_outbox()  # the replies held are what the budget wants back
        super().shed_memory()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
        self._drop_outbox()
        super().connection_lost(exc)


def _replies(block: bytes | bytearray) -> Iterator[bytes]:
    """Each line's reply in ``block``: up to and including its LF (the last may have none)."""
    start = 0
    while start < len(block):
        end = block.find(LF, start) + 1 or len(block)
        yield bytes(block[start:end])
        start = end
