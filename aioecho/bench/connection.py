"""One benchmark connection: an asyncio Protocol that sends pre-built requests
and verifies every reply byte for byte.

The hot path is one ``data_received`` per reply: a single bytes comparison
with the expected reply, one list append for the latency, one write for the
next request. Anything else (a reply split over reads, several replies in
one read, a wrong byte) takes the slower path, which verifies incrementally
against the expected reply without buffering what it already checked.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Callable
from time import monotonic_ns
from typing import cast

from .failures import classify
from .histogram import LatencyRecorder
from .payload import Payload

# Mismatches are counted without limit; only the first few are described.
MAX_EXAMPLES = 5
# How much of a wrong reply an example shows on each side of the first bad byte.
EXAMPLE_CONTEXT = 24
# Effectively "no limit" for the closed-loop send counter.
UNLIMITED = 1 << 62


class Tally:
    """What all connections of one process report into."""

    def __init__(self) -> None:
        self.latency = LatencyRecorder()
        self.mismatches = 0
        self.examples: list[str] = []
        self.lost: Counter[str] = Counter()
        self.open = 0  # transports not yet closed
        self.all_closed = asyncio.Event()

    def mismatch(self, connection: int, reply: int, expected: bytes, got: bytes) -> None:
        """Count a wrong reply; describe it if it is one of the first few."""
        self.mismatches += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(describe_mismatch(connection, reply, expected, got))


def describe_mismatch(connection: int, reply: int, expected: bytes, got: bytes) -> str:
    """One line showing where ``got`` first differs from ``expected``."""
    at = next(
        (i for i, (want, have) in enumerate(zip(expected, got, strict=False)) if want != have),
        min(len(expected), len(got)),
    )
    start = max(0, at - EXAMPLE_CONTEXT)
    end = at + EXAMPLE_CONTEXT
    return (
        f"connection {connection}, reply {reply}, byte {at}: "
        f"expected {expected[start:end]!r}, got {got[start:end]!r}"
    )


DoneCallback = Callable[["BenchConnection", int], None]


class BenchConnection(asyncio.Protocol):
    """The parts shared by closed- and open-loop connections.

    ``times`` holds, for every request sent and not yet answered, the time
    its latency counts from: when it was sent (closed loop) or when it was
    meant to be sent (open loop).
    """

    __slots__ = (
        "_done",
        "_expected",
        "_matched",
        "_next_reply",
        "_next_request",
        "_on_done",
        "_record",
        "_request",
        "_tally",
        "_write",
        "closed",
        "index",
        "is_open",
        "sent",
        "times",
        "transport",
    )

    def __init__(self, index: int, payload: Payload, tally: Tally, on_done: DoneCallback) -> None:
        self.index = index
        self._request = payload.first_request(index)  # the next one to send
        self._expected = payload.first_reply(index)
        self._next_request = payload.next_request
        self._next_reply = payload.next_reply
        self._matched = 0  # bytes of the expected reply already verified
        self._tally = tally
        self._record = tally.latency.samples.append
        self._on_done = on_done
        self._done = False
        self._write: Callable[[bytes], object] = self._not_connected
        self.transport: asyncio.Transport | None = None
        self.is_open = False  # connected, and neither lost nor closed by us
        self.closed = False  # connection_lost has run
        self.sent = 0  # requests written
        self.times: deque[int] = deque()

    @property
    def answered(self) -> int:
        """Replies verified so far."""
        return self.sent - len(self.times)

    # -- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._write = self.transport.write
        self.is_open = True
        self._tally.open += 1

    def data_received(self, data: bytes) -> None:
        now = monotonic_ns()
        if data == self._expected and not self._matched and self.times:
            self._record(now - self.times.popleft())
            self._expected = self._next_reply[self._expected]
            self._after_replies(1, now)
        else:
            self._verify(data, now)

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports why

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._tally.open -= 1
        if not self._tally.open:
            self._tally.all_closed.set()
        if self.is_open:
            self.is_open = False
            self._tally.lost[classify(exc)] += 1
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

    def stop_sending(self) -> None:
        """Send nothing more; replies still owed are verified but no longer measured."""
        raise NotImplementedError

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
        position, size, count = 0, len(data), 0
        while position < size:
            expected, matched = self._expected, self._matched
            if not self.times:
                self._mismatch(expected, data[position:])
                return
            take = min(len(expected) - matched, size - position)
            if data[position : position + take] != expected[matched : matched + take]:
                self._mismatch(expected, expected[:matched] + data[position : position + take])
                return
            position += take
            if matched + take < len(expected):
                self._matched = matched + take
                break
            self._matched = 0
            self._record(now - self.times.popleft())
            self._expected = self._next_reply[expected]
            count += 1
        if count:
            self._after_replies(count, now)

    def _mismatch(self, expected: bytes, got: bytes) -> None:
        # Once a reply is wrong the stream is out of step: nothing after it
        # can be trusted, so count one mismatch and drop the connection.
        self._tally.mismatch(self.index, self.answered, expected, got)
        self.abort()
        self._finish(monotonic_ns())

    def _send(self, count: int) -> None:
        """Write the next ``count`` requests in one go."""
        self.sent += count
        request, successor = self._request, self._next_request
        if count == 1:
            self._request = successor[request]
            self._write(request)
            return
        batch = []
        for _ in range(count):
            batch.append(request)
            request = successor[request]
        self._request = request
        self._write(b"".join(batch))

    @staticmethod
    def _not_connected(data: bytes) -> None:
        raise RuntimeError("not connected")


class ClosedLoopConnection(BenchConnection):
    """Keeps ``pipeline`` requests in flight: each reply releases the next request."""

    __slots__ = ("limit", "pipeline")

    def __init__(
        self, index: int, payload: Payload, tally: Tally, on_done: DoneCallback, pipeline: int
    ) -> None:
        super().__init__(index, payload, tally, on_done)
        self.pipeline = pipeline
        self.limit = UNLIMITED  # requests this connection may send in all

    def data_received(self, data: bytes) -> None:
        # The harness's hot path, inlined: the common reply (one whole reply
        # in one read, while more may be sent) costs one comparison, one
        # append and one write. Everything else takes the general path.
        now = monotonic_ns()
        times = self.times
        if data == self._expected and times and self.sent < self.limit and not self._matched:
            self._record(now - times.popleft())
            self._expected = self._next_reply[self._expected]
            times.append(now)
            self.sent += 1
            request = self._request
            self._request = self._next_request[request]
            self._write(request)
        else:
            self._verify(data, now)

    def start(self) -> None:
        """Fill the pipeline."""
        self._after_replies(self.pipeline, monotonic_ns())

    def set_quota(self, quota: int, now: int) -> None:
        """Let ``quota`` more replies come (those in flight included), then finish."""
        self.limit = max(self.sent, self.answered + quota)
        if self.limit == self.sent and not self.times:
            self._finish(now)

    def stop_sending(self) -> None:
        self.limit = self.sent

    def _after_replies(self, count: int, now: int) -> None:
        room = self.limit - self.sent
        if room <= 0:
            if not self.times:
                self._finish(now)
            return
        count = min(count, room)
        if count == 1:
            self.times.append(now)
        else:
            self.times.extend(itertools.repeat(now, count))
        self._send(count)


class OpenLoopConnection(BenchConnection):
    """Sends when the schedule says, whatever the server does.

    A request the connection cannot send at its intended time (the in-flight
    cap is reached, or the transport asked to pause writing) waits in
    ``owed`` and goes out as soon as it can; its latency still counts from
    the intended time, so a stalled server shows up as latency instead of
    silently lowering the load.
    """

    __slots__ = ("cap", "finishing", "owed", "paused")

    def __init__(
        self, index: int, payload: Payload, tally: Tally, on_done: DoneCallback, cap: int | None
    ) -> None:
        super().__init__(index, payload, tally, on_done)
        self.cap = UNLIMITED if cap is None else cap
        self.owed: deque[int] = deque()
        self.paused = False
        self.finishing = False  # the schedule has nothing more for this connection

    def send_at(self, intended: int) -> None:
        """Send one request whose latency counts from ``intended`` (monotonic ns)."""
        if not self.is_open:
            return
        if self.paused or self.owed or len(self.times) >= self.cap:
            self.owed.append(intended)
            return
        self.times.append(intended)
        self._send(1)

    def stop_sending(self) -> None:
        self.owed.clear()
        self.finishing = True

    def finish_schedule(self) -> None:
        """No more requests will be scheduled: finish once the last is answered."""
        self.finishing = True
        if not self.times and not self.owed:
            self._finish(monotonic_ns())

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._send_owed()

    def _after_replies(self, count: int, now: int) -> None:
        if self.owed:
            self._send_owed()
        elif self.finishing and not self.times:
            self._finish(now)

    def _send_owed(self) -> None:
        owed = self.owed
        count = min(len(owed), self.cap - len(self.times))
        if count <= 0 or self.paused or not self.is_open:
            return
        self.times.extend(owed.popleft() for _ in range(count))
        self._send(count)
