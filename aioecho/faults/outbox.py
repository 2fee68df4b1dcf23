"""The fault outbox: a connection's replies on their way to its transport, suffering faults.

A connection gets an outbox (as its :class:`~aioecho._core.sink.ReplySink`)
only while a fault is on. Replies go to the outbox first, as one block per
slice of lines; the outbox decides each line's fate, at most
:data:`LINES_PER_TURN` lines per loop turn (the rest waits for the next
turn, so a faulted stream of tiny lines takes a bounded share of the loop),
and holds the replies answered in a few :class:`Held` entries, each the
replies due at the same time (or held behind an earlier one) in one
bytearray. A pump writes the entries to the transport in order, as the
delays, the rate limit and the fragment gaps allow. Everything a connection
guarantees still holds:

- the outbox counts as held memory at what it costs (:meth:`FaultOutbox.held`),
  and a connection stops answering (and reading) while its outbox is over
  the write high-water mark, as it does while its transport is;
- a stalled connection reads nothing, so the idle and line timeouts still
  close it, and shutdown closes it like any other;
- a close waits for the replies already in the outbox, as it waits for
  those already written; a refusal (an error line, a timeout, the memory
  budget) waits at most its linger (:meth:`FaultOutbox.close_when_flushed`).

The outbox reaches the connection through its public methods only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import re
import socket
import struct
from collections import deque
from collections.abc import Callable

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

# The most lines whose fate one connection decides in one loop turn. A
# line's fate costs about a microsecond of Python whatever its size, so the
# reply slice alone (128 KiB, 32,768 empty lines) would let one connection
# hold the loop for tens of milliseconds; 512 lines keep it near half of one.
LINES_PER_TURN = 512

# What one held entry costs besides its bytearray (counted as allocated, by
# its __sizeof__): 80 B on CPython 3.11 (64-bit), the entry with its GC
# header, its float and its deque slot, measured with tracemalloc, rounded
# up for what the allocator keeps besides.
ENTRY_COST = 96

# SO_LINGER on, with a zero timeout: close() then sends a reset.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)

LF = b"\n"
LINE_END = re.compile(LF)
NEVER = -math.inf
ANSWER, RESET = Verdict.ANSWER, Verdict.RESET


class Held:
    """Replies held until ``due`` (by the server's clock): ``data``, or a reset (None)."""

    __slots__ = ("data", "due")

    def __init__(self, due: float, data: bytearray | None) -> None:
        self.due = due
        self.data = data


class FaultOutbox:
    """One connection's replies, held and written as a :class:`FaultPlan` decides."""

    __slots__ = (
        "_clock",
        "_close_by",
        "_close_linger",
        "_close_pending",
        "_connection",
        "_counters",
        "_deciding",
        "_entries",
        "_error",
        "_error_entry",
        "_gated",
        "_give_up",
        "_lines",
        "_mid_reply",
        "_next_write",
        "_paced",
        "_plan",
        "_pump_handle",
        "_random",
        "_resetting",
        "_sent",
        "_silent",
        "_undecided",
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
        self._undecided = bytearray()  # replies whose fate is not drawn yet
        self._error = b""  # the server's own line, queued once the replies before it are
        self._entries: deque[Held] = deque()
        self._error_entry: Held | None = None
        self._deciding: asyncio.Handle | None = None
        self._pump_handle: asyncio.Handle | None = None
        self._give_up: asyncio.TimerHandle | None = None
        self._next_write = 0.0  # when the rate limit or fragment gap lets the next piece go
        self._paced = bool(plan.bandwidth or plan.fragment)
        self._lines = 0  # lines whose fate has been decided
        self._sent = 0  # bytes written, for close_after
        self._mid_reply = False  # the last piece written ended inside a reply
        self._silent = False  # stalled, or a reset is on its way: answer nothing more
        self._resetting = False  # a line drew a reset: it follows the replies before it
        self._gated = False  # not answering while the outbox is full
        self._close_pending = False  # close once the outbox is written
        self._close_linger: float | None = None
        self._close_by: float | None = None  # then give up on what is still held

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
        """Take replies to decide in turn; the server's own error line goes out undelayed."""
        if replies and not self._silent:
            # A few lines (fewer bytes than a turn's lines) are decided now,
            # which saves a ping-pong client a turn; the rest in later turns.
            at_once = not self._undecided and len(replies) <= LINES_PER_TURN
            self._undecided += replies
            if at_once:
                self._decide(LINES_PER_TURN)
        if error:
            self._error = error
        if self._deciding is None:
            # Never decided nor written from here: a reset or a close must not
            # happen in the middle of answering a slice of lines.
            self._deciding = asyncio.get_running_loop().call_soon(self._decide_turn)

    def accepts(self, everything: bool) -> bool:
        """Never once stalled; otherwise once the replies taken are decided and the
        outbox is under the high-water mark (or at the end of input)."""
        if self._silent:
            return False
        if not everything and (self._undecided or self.held() >= WRITE_HIGH_WATER):
            self._gated = True  # the pump lets the connection answer again once drained
            return False
        return True

    def held(self) -> int:
        """What the held replies cost: each bytearray as allocated, and each entry's objects."""
        cost = len(self._error) + (self._undecided.__sizeof__() if self._undecided else 0)
        for entry in self._entries:  # a few: replies going out together share one
            cost += ENTRY_COST + (0 if entry.data is None else entry.data.__sizeof__())
        return cost

    def close_when_flushed(self, linger: float | None) -> bool:
        """Hold the close off while replies are held; with a ``linger``, for that long at most.

        A refusal closes with a linger (2 s): its replies, then its error
        line, get as long again as the connection's lingering close, so a
        delay or a rate limit cannot keep a refused connection open.
        """
        if not self._holding():
            return False
        self._close_pending = True
        self._close_linger = linger
        if linger is not None and self._close_by is None:
            # By the server's clock, which sweeps move; the timer is for when none run.
            self._close_by = self._clock() + linger
            loop = asyncio.get_running_loop()
            self._give_up = loop.call_later(linger + MIN_WAIT, self.flush)
        return True

    def flush(self) -> None:
        """Pump now rather than at the time last planned: the transport or the clock moved."""
        if self._entries or self._close_pending:
            self._cancel_pump()
            self._pump()

    def discard(self) -> None:
        self._cancel_pump()
        self._cancel(self._deciding)
        self._cancel(self._give_up)
        self._deciding = self._give_up = None
        self._undecided.clear()
        self._entries.clear()
        self._error, self._error_entry = b"", None

    # -- deciding: replies into held entries ------------------------------------

    def _holding(self) -> bool:
        return bool(self._entries or self._undecided or self._error)

    def _decide_turn(self) -> None:
        """Decide this turn's share of lines, then write what is due."""
        self._deciding = None
        if self._connection.transport.is_closing():
            return
        if self._undecided:
            self._decide(LINES_PER_TURN)
        if self._undecided:  # the rest waits for the next turn, after every other connection
            self._deciding = asyncio.get_running_loop().call_soon(self._decide_turn)
        elif self._error:
            self._queue(self._error, self._clock(), alone=True)
            self._error_entry, self._error = self._entries[-1], b""
        self._cancel_pump()
        self._pump()

    def _decide(self, most: int) -> None:
        """Draw the fate of up to ``most`` lines, in order, and queue the replies answered.

        Consecutive replies that go out together share an entry: those due no
        later than the entry before them wait for it anyway, replies keeping
        the order of their lines. Where every line has the same fate, the
        whole block is decided at once.
        """
        block, now = self._undecided, self._clock()
        with memoryview(block) as view:
            if self._plan.draws or self._plan.fragment:
                decided = self._decide_each(block, view, most, now)
            else:
                decided = self._decide_all(block, view, now)
        if self._silent:  # nothing more is answered
            decided = len(block)
            if self._resetting:
                self._entries.append(Held(now, None))
        del block[:decided]

    def _decide_all(self, block: bytearray, view: memoryview, now: float) -> int:
        """No draws: every line is answered, after the one delay there is."""
        plan = self._plan
        lines = block.count(LF) + (block[-1:] != LF)
        self._lines += lines
        self._count(lines, {Fault.DELAY: lines if plan.delays else 0})
        self._queue(view, now + (plan.delays[0].seconds if plan.delays else 0.0))
        return len(block)

    def _decide_each(self, block: bytearray, view: memoryview, most: int, now: float) -> int:
        """Draw each line's fate in turn, in a fixed order: stall, reset, drop, delay, jitter.

        Returns where the lines decided end. The hot loop of a faulted
        connection: the plan's draws are skipped where its fault is off, and
        the counters are tallied in plain integers, added to once.
        """
        plan, rng = self._plan, self._random
        verdicts, delays, jitter = plan.reset or plan.drop, plan.delays, plan.jitter
        stall_at = -1 if plan.stall_after is None else plan.stall_after
        start = run = 0  # run: where the replies bound for the entry at ``due`` begin
        due = self._tail_due()
        dropped = answered = delayed = jittered = split = 0
        for size in _line_sizes(block, most):
            if self._lines == stall_at:
                self._stall()
                break
            self._lines += 1
            end = start + size
            verdict = plan.verdict(rng) if verdicts else ANSWER
            if verdict is not ANSWER:
                if verdict is RESET:
                    self._silent = self._resetting = True  # a reset in place of this reply
                    break
                dropped += 1
                self._queue(view[run:start], due)
                start = run = end
                continue
            delay = plan.delay(rng) if delays else 0.0
            extra = plan.extra_delay(rng) if jitter else 0.0
            answered += 1
            delayed += delay > 0
            jittered += extra > 0
            split += 0 < plan.fragment < size
            if now + delay + extra > due:
                self._queue(view[run:start], due)
                run, due = start, now + delay + extra
            start = end
        self._queue(view[run:start], due)
        self._count(answered, {Fault.DROP: dropped, Fault.DELAY: delayed, Fault.JITTER: jittered})
        self._counters.faults[Fault.FRAGMENT] += split
        return start

    def _count(self, answered: int, faults: dict[Fault, int]) -> None:
        """Add a batch of lines answered, and the faults they drew, to the server's counters."""
        self._counters.messages += answered
        counters = self._counters.faults
        if self._plan.bandwidth:
            counters[Fault.BANDWIDTH] += answered
        for fault, count in faults.items():
            counters[fault] += count

    def _stall(self) -> None:
        """stall_after: answer nothing more, and read nothing more either."""
        self._silent = True  # accepts() says no from now
        self._counters.faults[Fault.STALL_AFTER] += 1
        self._connection.transport.pause_reading()

    def _tail_due(self) -> float:
        """When the last entry is due, if replies may join it; else never."""
        entries = self._entries
        if not entries or entries[-1].data is None or entries[-1] is self._error_entry:
            return NEVER
        return entries[-1].due

    def _queue(self, data: memoryview | bytes, due: float, alone: bool = False) -> None:
        """Hold ``data`` until ``due``, with the last entry if that is due as late."""
        if not data:
            return
        if not alone and due <= self._tail_due():
            tail = self._entries[-1].data
            assert tail is not None
            tail += data
        else:
            self._entries.append(Held(due, bytearray(data)))

    # -- the pump: outbox to transport ---------------------------------------

    def _pump(self) -> None:
        self._pump_handle = None
        connection = self._connection
        transport = connection.transport
        if transport.is_closing():
            return
        if self._close_by is not None and self._clock() >= self._close_by:
            return self._close_now()
        if self._paced:
            # Paced pieces go out only as fast as the kernel takes them: with no
            # room in the transport's buffer, a peer that stops reading pauses
            # the pump until its buffer is empty again (resume_writing() flushes),
            # instead of a timer per piece queueing bytes nobody takes.
            transport.set_write_buffer_limits(high=0, low=0)
            self._paced = False
        self._write_due()
        if transport.is_closing():
            return
        if self._close_pending:
            if not self._holding():
                self._close_pending = False
                self._cancel(self._give_up)
                self._give_up = None
                connection.close_after_replies(self._close_linger)
        elif self._gated and not self._undecided and self.held() < WRITE_LOW_WATER:
            self._gated = False
            connection.answer_more()
        connection.account()  # what the outbox gave back, counted at once

    def _write_due(self) -> None:
        """Write what is due, piece by piece; schedule the pump for the rest."""
        entries, connection = self._entries, self._connection
        transport = connection.transport
        # Stop when the peer does not read (flush() pumps again) or is gone.
        while entries and not connection.writing_blocked and not transport.is_closing():
            head = entries[0]
            now = self._clock()
            wait = max(head.due, self._next_write) - now
            if wait > 0:
                self._pump_handle = asyncio.get_running_loop().call_later(
                    max(wait, MIN_WAIT), self._pump
                )
                return
            if head.data is None:
                return self._reset()
            if not self._write_piece(now):
                return

    def _write_piece(self, now: float) -> bool:
        """Write the next piece of what is due; False once the connection is closed."""
        plan = self._plan
        piece = self._take(self._piece_limit())
        if piece:
            self._connection.transport.write(piece)
            self._counters.bytes_out += len(piece)
            self._sent += len(piece)
            self._mid_reply = piece[-1] != LF[0]
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

    def _take(self, limit: int) -> bytearray:
        """Up to ``limit`` bytes of the head entry; a fragment never takes bytes of the next reply.

        Taken from the front of the entry's bytearray, which moves its start
        rather than copying what is left: a 64 KiB reply in one-byte pieces
        costs 64 Ki small writes, not 64 Ki copies of the rest.
        """
        entries = self._entries
        data = entries[0].data
        assert data is not None
        if self._plan.fragment:
            limit = data.find(LF, 0, limit) + 1 or limit
        if len(data) > limit:
            piece = data[:limit]
            del data[:limit]
            return piece
        if entries.popleft() is self._error_entry:
            self._error_entry = None
        return data

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

    def _close_now(self) -> None:
        """A refusal's linger is over: drop the replies still held, then close.

        The error line still goes out if it is whole and no reply was cut
        short before it.
        """
        entry = self._error_entry
        error = bytes(self._error or (entry.data if entry is not None and entry.data else b""))
        if self._mid_reply:
            error = b""
        self.discard()
        self._close_pending = False
        if error:
            self._connection.transport.write(error)
            self._counters.bytes_out += len(error)
        self._connection.close_after_replies(self._close_linger)

    def _cancel_pump(self) -> None:
        self._cancel(self._pump_handle)
        self._pump_handle = None

    @staticmethod
    def _cancel(handle: asyncio.Handle | None) -> None:
        if handle is not None:
            handle.cancel()


def _line_sizes(block: bytearray, most: int) -> list[int]:
    """The sizes of the first ``most`` replies in ``block``, each with its LF (the last
    may have none): one scan in C, and no copy of the rest of the block."""
    sizes, start = [], 0
    for found in itertools.islice(LINE_END.finditer(block, start), most):
        end = found.end()
        sizes.append(end - start)
        start = end
    if start < len(block) and len(sizes) < most:
        sizes.append(len(block) - start)
    return sizes
