"""The load of one client process: connect ramp-up, then closed- or open-loop
traffic, on whatever event loop is running.

A run has phases: ``connecting`` (every connection is attempted, each with a
timeout, failures classified), ``warmup`` (traffic flows, nothing is
measured), ``measuring``, then ``done``. Several processes run one engine
each and agree on when traffic starts; see ``runner.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import monotonic_ns
from typing import Literal

from ..tls import client_context
from .config import BenchConfig
from .connection import BenchConnection, ClosedLoopConnection, OpenLoopConnection, Tally
from .failures import INTERRUPTED, NOT_ATTEMPTED, classify
from .histogram import LatencyRecorder
from .payload import Payload
from .result import NS_PER_S, PartialResult
from .target import Target

# Connect attempts in progress at once. A burst much larger than the server's
# listen queue (aioecho's default is 1024) makes the kernel drop SYNs, and
# the one-second SYN retry would show up as connect latency of the harness.
CONNECT_CONCURRENCY = 256
# If this many attempts failed and none succeeded, the target is not there:
# stop instead of waiting out a timeout for every remaining connection.
GIVE_UP_AFTER = 100
# How often pending latencies are folded into the histogram (bounding memory).
FLUSH_INTERVAL = 0.1
PROGRESS_EVERY = 5  # flushes: one progress report per half second
# How long closing waits for servers to answer the half-close before aborting.
CLOSE_GRACE = 1.0
# Linux: bind() to an address without reserving a port until connect(), so
# each source address gets the whole ephemeral range (not the half bind() uses).
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

Phase = Literal["idle", "connecting", "warmup", "measuring", "done", "closing"]


@dataclass(frozen=True)
class Progress:
    """A snapshot for the live progress line."""

    phase: Phase
    connected: int
    connect_failed: int
    alive: int
    messages: int  # measured so far
    errors: int  # connections lost, plus wrong replies


ProgressCallback = Callable[[Progress], None]


class LoadEngine:
    """Connects, drives and measures the connections of one process.

    ``config`` is this process's share of the load (its connections, rate,
    messages); ``first_index`` numbers its connections within the whole run.
    """

    def __init__(
        self,
        config: BenchConfig,
        target: Target,
        *,
        first_index: int = 0,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.target = target
        self.first_index = first_index
        self.payload = Payload.build(config.size, config.expect, config.suffix)
        self._tls = client_context(config.tls_ca, config.tls_insecure) if config.tls else None
        self.tally = Tally()
        self.connections: list[BenchConnection] = []
        self.connect_errors: Counter[str] = Counter()
        self.connect_latency = LatencyRecorder()
        self.phase: Phase = "idle"
        self._on_progress = on_progress
        self._finished = asyncio.Event()
        self._busy = 0
        self._measure_start = self._measure_end = 0
        self._cpu_start = self._cpu_end = 0.0  # this process's CPU seconds
        self._ticker: asyncio.TimerHandle | None = None
        self._ticks = 0
        self._scheduler: OpenLoopScheduler | None = None

    # -- connecting ----------------------------------------------------------

    async def connect(self) -> None:
        """Open every connection, at ``connect_rate`` if set; failures are counted."""
        self.phase = "connecting"
        self._start_ticker()
        indices = iter(range(self.first_index, self.first_index + self.config.connections))
        slots = itertools.count()
        started = monotonic_ns()
        interval = None if self.config.connect_rate is None else NS_PER_S / self.config.connect_rate

        async def connector() -> None:
            for index in indices:
                if self._finished.is_set():
                    self.connect_errors[INTERRUPTED] += 1
                    continue
                if self._hopeless():
                    self.connect_errors[NOT_ATTEMPTED] += 1
                    continue
                if interval is not None:
                    await _sleep_until(started + int(next(slots) * interval))
                await self._open(index)

        workers = min(CONNECT_CONCURRENCY, self.config.connections)
        await asyncio.gather(*(connector() for _ in range(workers)))
        self.connect_latency.flush()

    def _hopeless(self) -> bool:
        return not self.connections and self.connect_errors.total() >= GIVE_UP_AFTER

    async def _open(self, index: int) -> None:
        target, loop = self.target, asyncio.get_running_loop()
        try:
            sock = socket.socket(target.family, socket.SOCK_STREAM)
        except OSError as exc:
            self.connect_errors[classify(exc)] += 1
            return
        started = monotonic_ns()
        try:
            sock.setblocking(False)
            source = target.source_for(index)
            if source is not None:
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((source, 0))
            async with asyncio.timeout(self.config.connect_timeout):
                await loop.sock_connect(sock, target.sockaddr)
                _, protocol = await loop.create_connection(
                    lambda: self._connection(index),
                    sock=sock,
                    ssl=self._tls,
                    server_hostname=target.host if self._tls else None,
                )
        except OSError as exc:  # TimeoutError and TLS failures included
            sock.close()
            self.connect_errors[classify(exc)] += 1
            return
        self.connect_latency.samples.append(monotonic_ns() - started)
        self.connections.append(protocol)

    def _connection(self, index: int) -> BenchConnection:
        cap = self.config.in_flight_cap
        if self.config.mode == "open":
            return OpenLoopConnection(index, self.payload, self.tally, self._on_done, cap)
        assert cap is not None
        return ClosedLoopConnection(index, self.payload, self.tally, self._on_done, cap)

    # -- traffic -------------------------------------------------------------

    async def run(self, start_ns: int | None = None) -> None:
        """Warm up, then measure until the duration or message count is reached.

        ``start_ns`` (monotonic) lets several processes start together.
        Returns early when :meth:`stop` is called or every connection is gone.
        """
        await _sleep_until(monotonic_ns() if start_ns is None else start_ns)
        if self._finished.is_set():
            return  # stopped while connecting
        start = monotonic_ns()
        live = [connection for connection in self.connections if connection.is_open]
        self._busy = len(live)
        if not live:
            self._end(start)
            return
        self.phase = "warmup"
        self._start_traffic(live, start)
        loop = asyncio.get_running_loop()
        end_timer: asyncio.TimerHandle | None = None
        try:
            # Even a zero wait would yield to the loop, and replies arriving
            # then would be dropped as warm-up: skip it.
            if not (self.config.warmup and await self._wait_finished(self.config.warmup)):
                self._begin_measuring(live)
                if self.config.time_limit is not None:
                    end_timer = loop.call_later(self.config.time_limit, self._end)
                await self._finished.wait()
        finally:
            if end_timer is not None:
                end_timer.cancel()
            if self._scheduler is not None:
                self._scheduler.stop()
            self._end()
            for connection in live:
                connection.stop_sending()

    def stop(self) -> None:
        """End the run now; what was measured so far is the result."""
        self._end()

    def _start_traffic(self, live: list[BenchConnection], start: int) -> None:
        if self.config.rate is None:
            for connection in live:
                assert isinstance(connection, ClosedLoopConnection)
                connection.start()
            return
        total = None
        if self.config.messages is not None:
            # Warm-up messages come on top: about --messages are measured.
            total = math.ceil(self.config.warmup * self.config.rate) + self.config.messages
        opened = [c for c in live if isinstance(c, OpenLoopConnection)]
        self._scheduler = OpenLoopScheduler(opened, self.config.rate, start, total)
        self._scheduler.start()

    def _begin_measuring(self, live: Sequence[BenchConnection]) -> None:
        self.tally.latency.discard()
        self._measure_start = monotonic_ns()
        self._cpu_start = time.process_time()
        self.phase = "measuring"
        messages = self.config.messages
        if messages is None or self.config.rate is not None:
            return
        closed = [c for c in live if isinstance(c, ClosedLoopConnection)]
        for position, connection in enumerate(closed):
            quota = messages // len(closed) + (position < messages % len(closed))
            connection.set_quota(quota, self._measure_start)

    async def _wait_finished(self, seconds: float) -> bool:
        """Wait ``seconds``; whether the run finished meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._finished.wait()
        return self._finished.is_set()

    def _on_done(self, connection: BenchConnection, now: int) -> None:
        if self.phase not in ("warmup", "measuring"):
            return
        self._busy -= 1
        if self._busy <= 0:
            self._end(now)

    def _end(self, now: int | None = None) -> None:
        if self.phase in ("done", "closing"):
            return
        now = monotonic_ns() if now is None else now
        if self.phase != "measuring":
            self._measure_start = now  # ended before measuring began: an empty window
            self._cpu_start = time.process_time()
        self._measure_end = now
        self._cpu_end = time.process_time()
        self.phase = "done"
        self.tally.latency.close()
        self._finished.set()

    # -- observing and closing -----------------------------------------------

    def progress(self) -> Progress:
        """Where the run stands."""
        return Progress(
            phase=self.phase,
            connected=len(self.connections),
            connect_failed=self.connect_errors.total(),
            alive=sum(connection.is_open for connection in self.connections),
            messages=self.tally.latency.count,
            errors=self.tally.lost.total() + self.tally.mismatches,
        )

    def partial(self) -> PartialResult:
        """This process's measurements, ready to merge."""
        self.tally.latency.flush()
        return PartialResult(
            connections=self.config.connections,
            connected=len(self.connections),
            connect_errors=dict(self.connect_errors),
            lost=dict(self.tally.lost),
            mismatches=self.tally.mismatches,
            examples=list(self.tally.examples),
            measure_start_ns=self._measure_start,
            measure_end_ns=self._measure_end,
            cpu_s=self._cpu_end - self._cpu_start,
            latency=self.tally.latency.histogram.encode(),
            connect_latency=self.connect_latency.histogram.encode(),
        )

    async def close(self) -> None:
        """Half-close every connection, give servers a moment to close, abort the rest."""
        self._end()
        self.phase = "closing"
        if self._ticker is not None:
            self._ticker.cancel()
        for connection in self.connections:
            connection.stop_sending()
            connection.close()
        if self.tally.open:
            self.tally.all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_GRACE):
                    await self.tally.all_closed.wait()
        for connection in self.connections:
            if not connection.closed:
                connection.abort()
        await asyncio.sleep(0)  # let the aborted transports call connection_lost

    def _start_ticker(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._tick)

    def _tick(self) -> None:
        if self.phase == "warmup":
            self.tally.latency.discard()
        else:
            self.tally.latency.flush()
        self._ticks += 1
        if self._on_progress is not None and self._ticks % PROGRESS_EVERY == 0:
            self._on_progress(self.progress())
        self._start_ticker()


class OpenLoopScheduler:
    """Sends at ``rate`` per second in total, round-robin over the connections.

    Message ``j`` is due at ``start + j / rate``: a fixed grid, independent
    of when replies arrive. Loop timers have millisecond resolution, so each
    tick sends every message already due; the few hundred microseconds a
    message may wait for its tick count in its latency, as in wrk2.
    """

    def __init__(
        self, connections: list[OpenLoopConnection], rate: float, start: int, total: int | None
    ) -> None:
        self._connections = connections
        self._interval = NS_PER_S / rate
        self._start = start
        self._total = total
        self._next = 0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._tick()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        start, interval, connections = self._start, self._interval, self._connections
        due = int((monotonic_ns() - start) / interval) + 1
        if self._total is not None:
            due = min(due, self._total)
        count = len(connections)
        for message in range(self._next, due):
            connections[message % count].send_at(start + int(message * interval))
        self._next = due
        if self._total is not None and due >= self._total:
            for connection in connections:
                connection.finish_schedule()
            return
        wake = start + int(due * interval)
        delay = max(0.0, (wake - monotonic_ns()) / NS_PER_S)
        self._handle = asyncio.get_running_loop().call_later(delay, self._tick)


async def _sleep_until(when_ns: int) -> None:
    delay = (when_ns - monotonic_ns()) / NS_PER_S
    if delay > 0:
        await asyncio.sleep(delay)
