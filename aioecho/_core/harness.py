"""One benchmark connection: an asyncio Protocol that sends numbered requests
and verifies every reply byte for byte.

The hot path is one ``data_received`` per reply: one bytes comparison with
the expected reply, one latency counted, the next request and its expected
reply numbered, one write. Compiled (``harness.pxd``), all of it runs in C.
Anything else (a reply split over reads, several replies in one read, a wrong
byte) takes the slower path, which verifies incrementally against the
expected reply without buffering what it already checked.

Every request is accounted for. ``times`` holds, for each request sent and
not yet answered, the instant its latency counts from (sent in closed loop,
due in open loop); a request whose instant falls in the measurement window
ends as exactly one of: answered (its latency recorded), timed out (no reply
within ``--timeout``), or unanswered (its connection was lost, or a wrong
reply came first). An open-loop message due in the window that never went
out is unsent, and its age when it was given up counts as its latency.

Open loop also times each message from when it was written (the uncorrected
latency, wrk2's other view) and how late it was written (its send lag): a
pacer that falls behind shows in the second, not as server latency.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterable
from time import monotonic_ns
from typing import Protocol, cast

from .latency import LatencyCounts

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from . import nocython as cython

# Mismatches are counted without limit; only the first few are described.
MAX_EXAMPLES = 5
# How much of a wrong reply an example shows on each side of the first bad byte.
EXAMPLE_CONTEXT = 24
# "Never" on the monotonic nanosecond clock, and "no limit" for sequence numbers.
NEVER = UNLIMITED = 1 << 62
# An open-loop message written this long after it was due counts as late: the
# pacer's ticks are a millisecond apart, so anything past that is the client
# (or a server that stopped reading) falling behind the schedule.
LATE_NS = 10_000_000
NS_PER_S = 1_000_000_000
# Why a connection was given up: its oldest request got no reply in time.
REPLY_TIMEOUT = "reply_timeout"

# What a reply that is not the expected one turned out to be.
SWAPPED = "swapped"  # the reply to another connection's request
DROPPED = "dropped"  # the reply to a later request: the ones before it never came
DUPLICATE = "duplicate"  # the reply to a request already answered
EXTRA = "extra"  # a reply to no request sent
WRONG = "wrong"  # not the reply to any request of the run
KINDS = (SWAPPED, DROPPED, DUPLICATE, EXTRA, WRONG)


class Tagged(Protocol):
    """Whose request a reply answers, and which one (``Payload.identify``)."""

    @property
    def connection(self) -> int: ...

    @property
    def sequence(self) -> int: ...


class Payload(Protocol):
    """What the harness needs of ``aioecho.bench.payload.Payload``."""

    @property
    def wide(self) -> bool: ...

    @property
    def modulus(self) -> int: ...

    @property
    def sequence_offset(self) -> int: ...

    def templates(self, connection: int) -> tuple[bytes, bytes]: ...

    def requests(self, connection: int) -> Callable[[int], bytes]: ...

    def replies(self, connection: int) -> Callable[[int], bytes]: ...

    def identify(self, reply: bytes) -> Tagged | None: ...


# Names why a connection was lost (``aioecho.bench.failures.classify``).
Classify = Callable[[BaseException | None], str]


class Tally:
    """What all connections of one process report into.

    ``window_start``/``window_end`` bound the measurement: a request counts
    if the instant its latency counts from falls in ``[start, end)``.
    Closed-loop connections send nothing at or after ``send_until``.
    Replies are filed by the second of the window they arrived in, or with
    ``by_due`` by the second their latency counts from; a second lasts
    ``second_ns`` (shorter only where a test compresses time).
    """

    __slots__ = (
        "all_closed",
        "by_due",
        "classify",
        "examples",
        "late",
        "latency",
        "lost",
        "mismatch_kinds",
        "mismatches",
        "next_second_at",
        "open",
        "payload",
        "second_at",
        "second_ns",
        "send_lag",
        "send_until",
        "sent_after_window",
        "starved_seconds",
        "timed_out",
        "unanswered",
        "uncorrected",
        "unsent",
        "unsent_age",
        "window_end",
        "window_start",
    )

    def __init__(self, payload: Payload, classify: Classify, second_ns: int = NS_PER_S) -> None:
        self.payload = payload
        self.classify = classify
        self.second_ns = second_ns
        self.latency = LatencyCounts()  # from the instant latency counts from
        self.uncorrected = LatencyCounts()  # open loop: from the write
        self.send_lag = LatencyCounts()  # open loop: from due to written
        self.unsent_age = LatencyCounts()  # open loop: due, never written
        # Second of the window -> connections that got no reply in all of it.
        self.starved_seconds: Counter[int] = Counter()
        self.by_due = False
        self.mismatches = 0
        self.mismatch_kinds: Counter[str] = Counter()
        self.examples: list[str] = []
        self.lost: Counter[str] = Counter()
        self.open = 0  # transports not yet closed
        self.all_closed = asyncio.Event()
        self.window_start = self.window_end = self.send_until = NEVER
        # Where the second that replies are being filed in begins, and ends.
        self.second_at = self.next_second_at = NEVER
        self.timed_out = 0
        self.unanswered = 0
        self.unsent = 0
        self.sent_after_window = 0  # open loop: due in the window, written after it
        self.late = 0

    def open_window(self, start: int, end: int) -> None:
        """Measure the requests whose latency counts from an instant in ``[start, end)``."""
        self.window_start, self.window_end = start, end
        self.second_at = self.next_second_at = start

    def next_second(self, instant: int) -> None:
        """A reply filed at ``instant``, outside the current second, is about to be
        recorded: file it in its own second."""
        second = (instant - self.window_start) // self.second_ns
        self.latency.mark(second)
        self.second_at = self.window_start + second * self.second_ns
        self.next_second_at = self.second_at + self.second_ns

    def starve(self, since: int, until: int) -> int:
        """A connection got no reply from ``since`` to ``until``: count it starved in
        every whole second of the window in between; how many seconds that is."""
        start, length = self.window_start, self.second_ns
        first = -((start - since) // length)  # the first second beginning at or after since
        end = (min(until, self.window_end) - start) // length  # seconds ended by until
        for second in range(first, end):
            self.starved_seconds[second] += 1
        return max(0, end - first)

    def count_unsent(self, due: int, now: int) -> None:
        """A message due at ``due`` is given up unsent ``now``: if it belongs to the
        window, its age at the window's end (or now, if sooner) is its latency."""
        if self.window_start <= due < self.window_end:
            self.unsent += 1
            self.unsent_age.record(min(now, self.window_end) - due)

    def in_window(self, instants: Iterable[int]) -> int:
        """How many of ``instants`` fall in the measurement window."""
        start, end = self.window_start, self.window_end
        return sum(start <= instant < end for instant in instants)

    def mismatch(self, kind: str, description: str) -> None:
        """Count a wrong reply of ``kind``; describe it if it is one of the first few."""
        self.mismatches += 1
        self.mismatch_kinds[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(description)


def describe_mismatch(connection: int, reply: int, kind: str, expected: bytes, got: bytes) -> str:
    """One line naming what ``got`` is and where it first differs from ``expected``."""
    at = next(
        (i for i, (want, have) in enumerate(zip(expected, got, strict=False)) if want != have),
        min(len(expected), len(got)),
    )
    start = max(0, at - EXAMPLE_CONTEXT)
    end = at + EXAMPLE_CONTEXT
    return (
        f"connection {connection}, reply {reply} ({kind}), byte {at}: "
        f"expected {expected[start:end]!r}, got {got[start:end]!r}"
    )


DoneCallback = Callable[["BenchConnection", int], None]


class BenchConnection:
    """The parts shared by closed- and open-loop connections.

    ``sequence`` numbers the next request, ``reply_sequence`` the request
    whose reply comes next; both continue across reconnects (``--churn``),
    so connection number and sequence number identify a request in the run.
    """

    __slots__ = (
        "_done",
        "_expected",
        "_latency",
        "_matched",
        "_on_done",
        "_record",
        "_reply_of",
        "_request_of",
        "_tally",
        "_write",
        "closed",
        "first_sequence",
        "index",
        "is_open",
        "last_reply_at",
        "longest_gap",
        "reply_sequence",
        "sequence",
        "starved",
        "times",
        "transport",
        "window_trips",
    )

    def __init__(
        self, index: int, tally: Tally, on_done: DoneCallback, first_sequence: int = 0
    ) -> None:
        self.index = index
        payload = tally.payload
        self._request_of = payload.requests(index)
        self._reply_of = payload.replies(index)
        self.first_sequence = self.sequence = self.reply_sequence = first_sequence
        self._expected = self._reply_of(first_sequence)
        self._matched = 0  # bytes of the expected reply already verified
        self._tally = tally
        self._latency = tally.latency
        self._record = tally.latency.samples.append  # pure Python's way to count one
        self._on_done = on_done
        self._done = False
        self._write: Callable[[bytes], object] = _not_connected
        self.transport: asyncio.Transport | None = None
        self.is_open = False  # connected, and neither lost nor closed by us
        self.closed = False  # connection_lost has run
        self.times: deque[int] = deque()
        # Fairness: round trips of the window, when the last reply came, the
        # longest wait between replies, and whether a whole second had none.
        self.window_trips = 0
        self.last_reply_at = 0
        self.longest_gap = 0
        self.starved = False

    @property
    def sent(self) -> int:
        """Requests written on this connection."""
        return self.sequence - self.first_sequence

    @property
    def answered(self) -> int:
        """Replies verified on this connection."""
        return self.reply_sequence - self.first_sequence

    # -- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._write = self.transport.write
        self.is_open = True
        self._tally.open += 1

    def data_received(self, data: bytes) -> None:
        now = monotonic_ns()
        if data == self._expected and not self._matched and self.times:
            self._answer(now)
            self._after_replies(1, now)
        else:
            self._verify(data, now)

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports why

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        tally = self._tally
        tally.open -= 1
        if not tally.open:
            tally.all_closed.set()
        if self.is_open:
            self.is_open = False
            tally.lost[tally.classify(exc)] += 1
        self.give_up(0)
        self._finish(monotonic_ns())

    # -- the load ------------------------------------------------------------

    def close(self) -> None:
        """End politely: half-close, so the server answers what it has and closes first.

        The side that closes first keeps the TIME_WAIT state; leaving it on the
        server keeps this machine's ephemeral ports free for the next run.
        """
        if self.is_open and self.transport is not None:
            self.is_open = False
            if self.transport.can_write_eof():
                self.transport.write_eof()
            else:
                self.transport.close()

    def abort(self) -> None:
        """Drop the connection now."""
        self.is_open = False
        if self.transport is not None:
            self.transport.abort()

    def overdue(self, deadline: int) -> bool:
        """Whether a request waits since before ``deadline`` (monotonic ns)."""
        return bool(self.times) and self.times[0] < deadline

    def expire(self, deadline: int) -> None:
        """The oldest request timed out: account for everything unanswered, then drop."""
        self._tally.lost[REPLY_TIMEOUT] += 1
        self.give_up(deadline)
        self._finish(monotonic_ns())

    def give_up(self, deadline: int) -> None:
        """Stop waiting: window requests from before ``deadline`` timed out, the rest
        are unanswered, and the connection is dropped if any were in flight.
        Each request is accounted for once."""
        tally, times = self._tally, self.times
        if times:
            timed_out = tally.in_window(t for t in times if t < deadline)
            tally.timed_out += timed_out
            tally.unanswered += tally.in_window(times) - timed_out
            self.reply_sequence += len(times)
            self._expected = self._reply_of(self.reply_sequence)
            times.clear()
            # Replies may still come for what was given up: they would look
            # like duplicates. Nothing more is read from this connection.
            self.abort()

    def stop_sending(self) -> None:
        """Send nothing more; replies still owed are verified and measured."""
        raise NotImplementedError

    def settle(self, now: int) -> None:
        """Finish now if nothing is in flight (after :meth:`stop_sending`)."""
        if not self.times:
            self._finish(now)

    def carry_on(self, old: BenchConnection) -> None:
        """Take over the fairness figures of ``old``, whose connection number this
        one carries on (``--churn``)."""
        self.window_trips = old.window_trips
        self.last_reply_at = old.last_reply_at
        self.longest_gap = old.longest_gap
        self.starved = old.starved

    def close_window(self) -> None:
        """The window is over: the wait since the last reply counts as a gap too."""
        self._waited(self._tally.window_end)

    def _waited(self, now: int) -> None:
        """A reply to a window request came ``now`` (or the window ended): measure
        the wait since the one before (since the window began, for the first)."""
        tally = self._tally
        since = max(self.last_reply_at, tally.window_start)
        gap = now - since
        if gap > self.longest_gap:
            self.longest_gap = gap
        if gap >= tally.second_ns and tally.starve(since, now):
            self.starved = True
        self.last_reply_at = now

    def _answer(self, now: int) -> None:
        """The expected reply arrived in full: measure it, expect the next."""
        tally = self._tally
        sent_at = self.times.popleft()
        if tally.window_start <= sent_at < tally.window_end:
            filed = sent_at if tally.by_due else now
            if not tally.second_at <= filed < tally.next_second_at:
                tally.next_second(filed)
            self._latency.record(now - sent_at)
            self.window_trips += 1
            self._waited(now)
        self.reply_sequence += 1
        self._expected = self._reply_of(self.reply_sequence)

    def _after_replies(self, count: int, now: int) -> None:
        """``count`` more replies were verified: send what the pacing allows."""
        raise NotImplementedError

    def _finish(self, now: int) -> None:
        """Report, once, that this connection will send and receive nothing more."""
        if not self._done:
            self._done = True
            self._on_done(self, now)

    def _verify(self, data: bytes, now: int) -> None:
        """The general path: replies split across reads, several per read, or wrong."""
        if not self.is_open:
            return  # given up or closed by us: what still comes is not verified
        position, size, count = 0, len(data), 0
        while position < size:
            expected, matched = self._expected, self._matched
            take = min(len(expected) - matched, size - position)
            wrong = data[position : position + take] != expected[matched : matched + take]
            if wrong or not self.times:
                end = data.find(b"\n", position)
                self._mismatch(expected, expected[:matched] + data[position : end + 1 or size])
                return
            position += take
            if matched + take < len(expected):
                self._matched = matched + take
                break
            self._matched = 0
            self._answer(now)
            count += 1
        if count:
            self._after_replies(count, now)

    def _mismatch(self, expected: bytes, got: bytes) -> None:
        # Once a reply is wrong the stream is out of step: nothing after it
        # can be trusted, so count one mismatch and drop the connection.
        kind = self._kind_of(got)
        description = describe_mismatch(self.index, self.answered, kind, expected, got)
        self._tally.mismatch(kind, description)
        self.give_up(0)
        self.abort()  # even with nothing in flight (an extra reply)
        self._finish(monotonic_ns())

    def _kind_of(self, got: bytes) -> str:
        """Which request ``got`` answers, relative to the one expected."""
        payload = self._tally.payload
        tagged = payload.identify(got)
        if tagged is None:
            return WRONG if self.times else EXTRA
        if tagged.connection != self.index:
            return SWAPPED
        ahead = (tagged.sequence - self.reply_sequence) % payload.modulus
        if ahead < len(self.times):
            return DROPPED
        return EXTRA if ahead < payload.modulus // 2 else DUPLICATE

    def _send(self, count: int) -> None:
        """Write the next ``count`` requests in one go."""
        first, request_of = self.sequence, self._request_of
        self.sequence = first + count
        if count == 1:
            self._write(request_of(first))
        else:
            self._write(b"".join(request_of(n) for n in range(first, first + count)))


def _not_connected(data: bytes) -> None:
    raise RuntimeError("not connected")


ChurnCallback = Callable[["ClosedLoopConnection"], None]


class ClosedLoopConnection(BenchConnection):
    """Keeps ``pipeline`` requests in flight: each reply releases the next request.

    ``limit`` is the sequence number it stops before (``--messages``);
    with ``churn``, it also stops after that many requests and hands over
    to a new connection through ``on_churn``. ``stop_at`` is the nearer of
    the two, kept for the hot path.
    """

    __slots__ = (
        "_limit",
        "_numbered",
        "_on_churn",
        "_reply_form",
        "_request_form",
        "_sequence_at",
        "churn_at",
        "pipeline",
        "stop_at",
    )

    def __init__(
        self,
        index: int,
        tally: Tally,
        on_done: DoneCallback,
        pipeline: int,
        *,
        first_sequence: int = 0,
        churn: int | None = None,
        on_churn: ChurnCallback | None = None,
    ) -> None:
        super().__init__(index, tally, on_done, first_sequence)
        self.pipeline = pipeline
        self.churn_at = UNLIMITED if churn is None else first_sequence + churn
        self.limit = UNLIMITED
        self._on_churn = on_churn
        payload = tally.payload
        # Requests too short for every digit of a sequence number take the
        # general path, which wraps the numbers.
        self._numbered = payload.wide
        # Pure Python formats the next request (and reply) from a template
        # with "%"; compiled, the hot path copies request (reply) 0 and writes
        # the sequence number's digits at _sequence_at.
        if cython.compiled:
            self._request_form, self._reply_form = self._request_of(0), self._reply_of(0)
        else:
            self._request_form, self._reply_form = payload.templates(index)
        self._sequence_at = payload.sequence_offset

    @property
    def limit(self) -> int:
        """The sequence number this connection stops before."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = value
        self.stop_at = min(value, self.churn_at)

    def data_received(self, data: bytes) -> None:
        # The harness's hot path: the common reply (one whole reply in one
        # read, while more may be sent) costs one comparison, one latency
        # counted, two numberings and one write. Everything else takes the
        # general path.
        now = (
            monotonic_clock_ns()  # type: ignore[name-defined]  # noqa: F821
            if cython.compiled
            else monotonic_ns()
        )
        if not (data == self._expected and self._step(now)):
            self._verify(data, now)

    def _step(self, now: int) -> bool:
        """Take the expected reply that came whole and send the next request, if that
        is all there is to do; False for the general path."""
        times, tally = self.times, self._tally
        sequence = self.sequence
        if not (
            self._numbered
            and len(times)
            and sequence < self.stop_at
            and now < tally.send_until
            and not self._matched
        ):
            return False
        sent_at = times.popleft()
        if tally.window_start <= sent_at < tally.window_end:
            filed = sent_at if tally.by_due else now
            if not tally.second_at <= filed < tally.next_second_at:
                tally.next_second(filed)
            if cython.compiled:
                self._latency.record(now - sent_at)
            else:
                self._record(now - sent_at)
            self.window_trips += 1
            self._waited(now)
        answered = self.reply_sequence + 1
        self.reply_sequence = answered
        times.append(now)
        self.sequence = sequence + 1
        if cython.compiled:
            at = self._sequence_at
            self._expected = with_number(  # type: ignore[name-defined]  # noqa: F821
                self._reply_form, at, answered
            )
            self._write(
                with_number(  # type: ignore[name-defined]  # noqa: F821
                    self._request_form, at, sequence
                )
            )
        else:
            self._expected = self._reply_form % answered
            self._write(self._request_form % sequence)
        return True

    def start(self) -> None:
        """Fill the pipeline."""
        self._after_replies(self.pipeline, monotonic_ns())

    def set_quota(self, quota: int, now: int) -> None:
        """Send exactly ``quota`` more requests, then finish once they are answered."""
        self.limit = self.sequence + quota
        self._after_replies(0, now)

    def stop_sending(self) -> None:
        self.limit = self.sequence

    def _after_replies(self, count: int, now: int) -> None:
        room = self.stop_at - self.sequence
        if now >= self._tally.send_until:
            room = 0
        if room <= 0:
            if not self.times:
                self._hand_over(now)
            return
        count = min(count, room)
        if count <= 0:
            return
        if count == 1:
            self.times.append(now)
        else:
            self.times.extend(itertools.repeat(now, count))
        self._send(count)

    def _hand_over(self, now: int) -> None:
        """Nothing in flight and nothing more to send here: finish, or churn."""
        churning = (
            self.sequence >= self.churn_at
            and self.sequence < self.limit
            and now < self._tally.send_until
            and self._on_churn is not None
            and self.is_open
        )
        if churning:
            assert self._on_churn is not None
            self._done = True  # its successor carries on, and finishes for it
            self.close()
            self._on_churn(self)
        else:
            self._finish(now)


class OpenLoopConnection(BenchConnection):
    """Sends when the schedule says, whatever the server does.

    A request the connection cannot send at its intended time (the in-flight
    cap is reached, or the transport asked to pause writing) waits in
    ``owed`` and goes out as soon as it can; its latency still counts from
    the intended time, so a stalled server shows up as latency instead of
    silently lowering the load.
    """

    __slots__ = ("cap", "finishing", "owed", "paused", "written")

    def __init__(self, index: int, tally: Tally, on_done: DoneCallback, cap: int | None) -> None:
        super().__init__(index, tally, on_done)
        self.cap = UNLIMITED if cap is None else cap
        self.owed: deque[int] = deque()
        # When each request in ``times`` was written, in the same order.
        self.written: deque[int] = deque()
        self.paused = False
        self.finishing = False  # the schedule has nothing more for this connection

    def send_at(self, intended: int, now: int) -> None:
        """Send one request whose latency counts from ``intended`` (monotonic ns)."""
        if not self.is_open:
            self._tally.count_unsent(intended, now)
            return
        if self.paused or self.owed or len(self.times) >= self.cap:
            self.owed.append(intended)
            return
        self._sending(intended, now, False)
        self._send(1)

    def _sending(self, intended: int, now: int, owed: bool) -> None:
        """Account for the request due at ``intended`` being written ``now``;
        ``owed``: it waited on this connection (the server was not taking more)."""
        tally = self._tally
        if tally.window_start <= intended < tally.window_end:
            tally.send_lag.record(now - intended)
            if now - intended > LATE_NS:
                tally.late += 1
            # Held back by the connection (the server took no more) past the
            # window: the server did not keep up. A pacer late by itself is the
            # client's, and shows as send lag.
            if owed and now - tally.window_end >= LATE_NS:
                tally.sent_after_window += 1
        self.times.append(intended)
        self.written.append(now)

    def _answer(self, now: int) -> None:
        written = self.written.popleft()
        tally = self._tally
        if tally.window_start <= self.times[0] < tally.window_end:
            tally.uncorrected.record(now - written)
        BenchConnection._answer(self, now)

    def overdue(self, deadline: int) -> bool:
        return BenchConnection.overdue(self, deadline) or (
            bool(self.owed) and self.owed[0] < deadline
        )

    def give_up(self, deadline: int) -> None:
        self._drop_owed()
        self.written.clear()
        BenchConnection.give_up(self, deadline)

    def stop_sending(self) -> None:
        # What is owed was due in the window: it still goes out as the server
        # lets it (timed from due, and counted as sent after the window), and
        # only what is still owed when the drain gives up is unsent.
        self.finishing = True

    def settle(self, now: int) -> None:
        if not self.times and not self.owed:
            self._finish(now)

    def finish_schedule(self) -> None:
        """No more requests will be scheduled: finish once the last is answered."""
        self.finishing = True
        if not self.times and not self.owed:
            self._finish(monotonic_ns())

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._send_owed(monotonic_ns())

    def _drop_owed(self) -> None:
        """Messages due but never written are unsent."""
        now = monotonic_ns()
        for intended in self.owed:
            self._tally.count_unsent(intended, now)
        self.owed.clear()

    def _after_replies(self, count: int, now: int) -> None:
        if self.owed:
            self._send_owed(now)
        elif self.finishing and not self.times:
            self._finish(now)

    def _send_owed(self, now: int) -> None:
        owed = self.owed
        count = min(len(owed), self.cap - len(self.times))
        if count <= 0 or self.paused or not self.is_open:
            return
        for _ in range(count):
            self._sending(owed.popleft(), now, True)
        self._send(count)


# Plain protocols, not buffered ones: on uvloop a buffered protocol costs a
# second call into Python per read (get_buffer), as much as the bytes object
# a plain one gets (callgrind: 6,001 instructions per reply against 6,055).
class ClosedLoopProtocol(ClosedLoopConnection, asyncio.Protocol):
    """A closed-loop connection as an asyncio protocol."""

    __slots__ = ()


class OpenLoopProtocol(OpenLoopConnection, asyncio.Protocol):
    """An open-loop connection as an asyncio protocol."""

    __slots__ = ()
