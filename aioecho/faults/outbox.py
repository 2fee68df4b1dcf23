"""The fault outbox: a connection's replies on their way to its transport, suffering faults.

A connection gets an outbox (as its :class:`~aioecho._core.sink.ReplySink`)
only while a fault is on. Every reply goes to the outbox first, one entry per
line, each with the time it is due by the server's clock; a pump writes the
outbox to the transport in order, as the delays, the rate limit and the
fragment gaps allow. Everything a connection guarantees still holds:

- the outbox counts as held memory, and a connection stops answering (and
  reading) while its outbox is over the write high-water mark, as it does
  while its transport is;
- a stalled connection reads nothing, so the idle and line timeouts still
  close it, and shutdown closes it like any other;
- a close (an error line, a timeout, shutdown, the peer's end of input)
  waits for the replies already in the outbox, as it waits for those
  already written.

The outbox reaches the connection through its public methods only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterator

from ..core import (
    ERROR_LINGER_SECONDS,
    WRITE_HIGH_WATER,
    WRITE_LOW_WATER,
    Clock,
    Counters,
    EchoConnection,
    Fault,
)
from .plan import FaultPlan, Verdict

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

# An outbox entry: when it is due (by the server's clock), and the bytes to
# write, or None for a reset.
Outgoing = tuple[float, bytes | None]


class FaultOutbox:
    """One connection's replies, held and written as a :class:`FaultPlan` decides."""

    __slots__ = (
        "_bytes",
        "_clock",
        "_close_linger",
        "_close_pending",
        "_connection",
        "_counters",
        "_entries",
        "_gated",
        "_lines",
        "_next_write",
        "_plan",
        "_pump_handle",
        "_random",
        "_sent",
        "_silent",
    )

    def __init__(
        self,
        connection: EchoConnection,
        plan: FaultPlan,
        rng: random.Random,
        counters: Counters,
        clock: Clock,
    ) -> None:
        self._connection = connection
        self._plan = plan
        self._random = rng  # this connection's draws
        self._counters = counters
        self._clock = clock
        self._entries: deque[Outgoing] = deque()
        self._bytes = 0
        self._pump_handle: asyncio.Handle | None = None
        self._next_write = 0.0  # when the rate limit or fragment gap lets the next piece go
        self._lines = 0  # lines whose fate has been decided
        self._sent = 0  # bytes written, for close_after
        self._silent = False  # stalled, or a reset is on its way: answer nothing more
        self._gated = False  # not answering while the outbox is full
        self._close_pending = False  # close once the outbox is written
        self._close_linger: float | None = None

    @classmethod
    def factory(
        cls, plan: FaultPlan, counters: Counters, clock: Clock
    ) -> Callable[[EchoConnection], FaultOutbox]:
        """Makes each new connection's outbox, with the plan's next generator."""
        # Numbered from here: set_faults() starts the seed's order again.
        generators = plan.generators()
        return lambda connection: cls(connection, plan, next(generators), counters, clock)

    # -- the reply seam --------------------------------------------------------

    def write(self, replies: bytes | bytearray, error: bytes = b"") -> None:
        """Decide each line's fate; the server's own error line goes out undelayed."""
        for line_reply in _replies(replies):
            self._decide(line_reply)
        if error:
            self._enqueue(error, 0.0)

    def accepts(self, everything: bool) -> bool:
        """Never once stalled; otherwise while under the high-water mark (or at the end)."""
        if self._silent:
            return False
        if not everything and self._bytes >= WRITE_HIGH_WATER:
            self._gated = True  # the pump lets the connection answer again once drained
            return False
        return True

    def held(self) -> int:
        return self._bytes

    def close_when_flushed(self, linger: float | None) -> bool:
        if not self._entries:
            return False
        self._close_pending = True
        self._close_linger = linger
        return True

    def flush(self) -> None:
        """Pump now rather than at the time last planned: the transport or the clock moved."""
        if self._entries or self._close_pending:
            self._cancel_pump()
            self._pump()

    def discard(self) -> None:
        self._cancel_pump()
        self._entries.clear()
        self._bytes = 0

    # -- replies into the outbox ---------------------------------------------

    def _decide(self, reply: bytes) -> None:
        """Decide one line's fate, in a fixed order of draws, and queue what it gets."""
        if self._silent:
            return
        plan, counters = self._plan, self._counters.faults
        if plan.stall_after is not None and self._lines >= plan.stall_after:
            self._silent = True  # the connection stops reading: accepts() says no from now
            counters[Fault.STALL_AFTER] += 1
            return
        self._lines += 1
        verdict = plan.verdict(self._random)
        if verdict is Verdict.DROP:
            counters[Fault.DROP] += 1
            return
        if verdict is Verdict.RESET:
            self._silent = True
            self._enqueue(None, 0.0)
            return
        delay, jitter = plan.delay(self._random), plan.extra_delay(self._random)
        counters[Fault.DELAY] += delay > 0
        counters[Fault.JITTER] += jitter > 0
        counters[Fault.BANDWIDTH] += plan.bandwidth > 0
        counters[Fault.FRAGMENT] += 0 < plan.fragment < len(reply)
        self._counters.messages += 1
        self._enqueue(reply, delay + jitter)

    def _enqueue(self, data: bytes | None, delay: float) -> None:
        # The pump writes the outbox in order, so a reply due early waits for
        # the delayed ones ahead of it: replies keep the order of their lines.
        self._entries.append((self._clock() + delay, data))
        self._bytes += len(data) if data else 0
        if self._pump_handle is None:
            # Never written from here: a reset or a close must not happen in
            # the middle of answering a slice of lines.
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    # -- the pump: outbox to transport ---------------------------------------

    def _pump(self) -> None:
        self._pump_handle = None
        connection = self._connection
        transport = connection.transport
        if transport.is_closing():
            return
        self._write_due()
        if transport.is_closing():
            return
        if self._close_pending:
            if not self._entries:
                self._close_pending = False
                connection.close_after_replies(self._close_linger)
        elif self._gated and self._bytes < WRITE_LOW_WATER:
            self._gated = False
            connection.answer_more()
        connection.account()  # what the outbox gave back, counted at once

    def _write_due(self) -> None:
        """Write what is due, piece by piece; schedule the pump for the rest."""
        entries, connection = self._entries, self._connection
        transport = connection.transport
        # Stop when the peer does not read (flush() pumps again) or is gone.
        while entries and not connection.writing_blocked and not transport.is_closing():
            due, data = entries[0]
            now = self._clock()
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
        plan = self._plan
        piece = self._take(self._piece_limit(), now)
        if piece:
            self._connection.transport.write(piece)
            self._counters.bytes_out += len(piece)
            self._sent += len(piece)
            self._bytes -= len(piece)
        if plan.close_after is not None and self._sent >= plan.close_after:
            self._close_at_limit()
            return False
        if plan.bandwidth:
            self._next_write = max(self._next_write, now) + len(piece) / plan.bandwidth
        if plan.fragment:
            self._next_write = max(self._next_write, now + FRAGMENT_GAP)
        return True

    def _piece_limit(self) -> int:
        """The most bytes the next write may take."""
        plan = self._plan
        limit = plan.fragment or WRITE_HIGH_WATER
        if plan.bandwidth:
            limit = min(limit, max(1, int(plan.bandwidth * BANDWIDTH_TICK)))
        if plan.close_after is not None:
            limit = min(limit, plan.close_after - self._sent)
        return limit

    def _take(self, limit: int, now: float) -> bytes:
        """Up to ``limit`` bytes of the replies due, from the head of the outbox.

        Replies due together go out in one write; a fragmented reply's
        pieces never take bytes of the next reply.
        """
        entries = self._entries
        parts: list[bytes] = []
        size = 0
        while entries and size < limit:
            due, data = entries[0]
            if data is None or due > now or (parts and self._plan.fragment):
                break
            room = limit - size
            if len(data) > room:
                entries[0] = (due, data[room:])
                data = data[:room]
            else:
                entries.popleft()
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def _reset(self) -> None:
        """Reset the connection (SO_LINGER 0, then close) in place of a reply."""
        self._counters.faults[Fault.RESET] += 1
        self.discard()
        self._connection.stop_answering()
        transport = self._connection.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # a peer gone already resets nothing
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        transport.abort()

    def _close_at_limit(self) -> None:
        """close_after: the byte limit is reached; close as toxiproxy's limit_data does."""
        self._counters.faults[Fault.CLOSE_AFTER] += 1
        self.discard()
        self._close_pending = False
        self._connection.close_after_replies(ERROR_LINGER_SECONDS)  # nothing held: at once

    def _cancel_pump(self) -> None:
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None


def _replies(block: bytes | bytearray) -> Iterator[bytes]:
    """Each line's reply in ``block``: up to and including its LF (the last may have none)."""
    start = 0
    while start < len(block):
        end = block.find(LF, start) + 1 or len(block)
        yield bytes(block[start:end])
        start = end
