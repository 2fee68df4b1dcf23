"""The load of one client process: connect ramp-up, then closed- or open-loop
traffic, on whatever event loop is running.

A run has phases: ``connecting`` (every connection is attempted, each with a
timeout, failures classified), ``warmup`` (traffic flows, nothing is
measured), ``measuring``, ``draining`` (nothing more is sent; replies to
requests of the window are awaited up to ``--timeout``), then ``done``.
Several processes run one engine each and agree on when traffic starts; see
``runner.py``.

The measurement window is fixed on the monotonic clock before traffic
starts: ``[start + warmup, start + warmup + duration)``. A request belongs
to it when the instant its latency counts from does, so the window stays
exact even when the loop is too busy to run its timers on time (uvloop
handles up to 48 x 1024 ready sockets before it looks at timers again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from time import monotonic_ns
from typing import Literal, TypeVar

from ..core import (
    NEVER,
    BenchConnection,
    ClosedLoopConnection,
    ClosedLoopProtocol,
    OpenLoopConnection,
    OpenLoopProtocol,
    Tally,
)
from ..procfs import rss_bytes
from ..tls import client_context
from .config import BenchConfig
from .failures import INTERRUPTED, NOT_ATTEMPTED, classify
from .hiccups import HiccupProbe
from .histogram import Histogram, LatencyRecorder
from .idle import IdleConnection, idle_exchange
from .pacer import Pacer, Schedule
from .payload import Payload
from .result import NS_PER_S, PartialResult
from .target import Target
from .timeline import Timeline

# Connect attempts in progress at once. A burst much larger than the server's
# listen queue (aioecho's default is 1024) makes the kernel drop SYNs, and
# the one-second SYN retry would show up as connect latency of the harness.
CONNECT_CONCURRENCY = 256
# If this many attempts failed and none succeeded, the target is not there:
# stop instead of waiting out a timeout for every remaining connection.
GIVE_UP_AFTER = 100
# The period of the ticker: timeouts, the timeline, progress. Latencies are
# folded into the histogram once a second of the window is over: each fold
# costs a Python call per distinct value, and at 1,000 connections nearly
# every reply of a tenth of a second has its own.
FLUSH_INTERVAL = 0.1
PROGRESS_EVERY = 5  # ticks: one progress report per half second
# How often unanswered requests are checked against --timeout: a quarter of
# it, within these bounds (a check walks every connection).
SWEEP_MIN_S, SWEEP_MAX_S = FLUSH_INTERVAL, 1.0
# How long closing waits for servers to answer the half-close before aborting.
CLOSE_GRACE = 1.0
# Linux: bind() to an address without reserving a port until connect(), so
# each source address gets the whole ephemeral range (not the half bind() uses).
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

P = TypeVar("P", bound=asyncio.BaseProtocol)
Phase = Literal["idle", "connecting", "warmup", "measuring", "draining", "done", "closing"]


@dataclass(frozen=True)
class Progress:
    """A snapshot for the live progress line."""

    phase: Phase
    connected: int
    connect_failed: int
    alive: int
    messages: int  # measured so far
    errors: int  # connections lost, wrong replies, timed-out requests


ProgressCallback = Callable[[Progress], None]


class LoadEngine:
    """Connects, drives and measures the connections of one process.

    ``config`` is this process's share of the load (its connections, rate,
    messages); ``first_index`` numbers its connections within the whole run
    of ``total_connections``. ``second_ns`` is how long a second of the
    timeline lasts: a test may compress time with a shorter one.
    """

    def __init__(
        self,
        config: BenchConfig,
        target: Target,
        *,
        first_index: int = 0,
        total_connections: int | None = None,
        on_progress: ProgressCallback | None = None,
        second_ns: int = NS_PER_S,
    ) -> None:
        self.config = config
        self.target = target
        self.first_index = first_index
        total = total_connections or first_index + config.connections
        self.payload = Payload.build(config.size, config.expect, config.suffix, total)
        self._tls = client_context(config.tls_ca, config.tls_insecure) if config.tls else None
        self.tally = Tally(self.payload, classify, second_ns)
        self.tally.by_due = config.timeline_by == "due"
        self.latency = LatencyRecorder(self.tally.latency)
        self.uncorrected = LatencyRecorder(self.tally.uncorrected)
        self.send_lag = LatencyRecorder(self.tally.send_lag)
        self.unsent_age = LatencyRecorder(self.tally.unsent_age)
        self.slots: dict[int, BenchConnection] = {}  # connection number -> its current connection
        self.connects = 0  # connections opened, reconnects included
        self.connect_errors: Counter[str] = Counter()
        self.connect_latency = LatencyRecorder()
        self.sources: Counter[str] = Counter()
        self.phase: Phase = "idle"
        self._on_progress = on_progress
        self._finished = asyncio.Event()  # the window is over
        self._drained = asyncio.Event()  # and every window request is accounted for
        self._busy = 0
        self._window_scheduled_end = NEVER
        self._measure_start = self._measure_end = 0
        self._cpu_start = self._cpu_end = 0.0  # this process's CPU seconds
        self._cpu_wall_start = self._cpu_wall_end = 0
        self._connect_start = self._connect_end = 0
        self._rss_before = self._rss_after = 0
        self._ticker: asyncio.TimerHandle | None = None
        self._end_timer: asyncio.TimerHandle | None = None
        self._ticks = 0
        self._next_sweep = 0
        self._timeout_ns = int(config.timeout * NS_PER_S)
        self._sweep_ns = int(min(max(config.timeout / 4, SWEEP_MIN_S), SWEEP_MAX_S) * NS_PER_S)
        self.hiccups = HiccupProbe()  # how late the loop ran a 1 ms timer
        self.loop_lag = Histogram()  # while traffic flows
        self.connect_loop_lag = Histogram()  # while connecting
        self._schedule: Schedule | None = None
        self._pacer: Pacer | None = None
        self._timeline: Timeline | None = None
        self._reopening: set[asyncio.Task[None]] = set()
        self.idle_connections: list[IdleConnection] = []
        self.idle_alive = 0

    @property
    def connections(self) -> list[BenchConnection]:
        """The current connection of every connection number that opened."""
        return list(self.slots.values())

    # -- connecting ----------------------------------------------------------

    async def connect(self) -> None:
        """Open every connection, at ``connect_rate`` if set; failures are counted."""
        self.phase = "connecting"
        self._rss_before = rss_bytes() or 0
        self._start_ticker()
        self.hiccups.start()
        first, active, idle = self.first_index, self.config.connections, self.config.idle
        # Idle connections after the active ones; their numbers only pick a source address.
        indices = iter(range(first, first + active + idle))
        slots = itertools.count()
        started = self._connect_start = monotonic_ns()
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
                if index >= first + active:
                    idle_connection = await self._open(index, self._idle_connection)
                    if idle_connection is not None:
                        self.idle_connections.append(idle_connection)
                    continue
                connection = await self._open(index, partial(self._connection, index, 0))
                if connection is not None:
                    self.slots[index] = connection

        workers = min(CONNECT_CONCURRENCY, active + idle)
        await asyncio.gather(*(connector() for _ in range(workers)))
        # The loop may now pause until every process has connected: a tick
        # left pending would count that wait as lag. Traffic starts a new one.
        self._stop_ticker()
        self.hiccups.stop()
        self.connect_loop_lag.add(self.hiccups.take())
        self._connect_end = monotonic_ns()
        self._rss_after = rss_bytes() or 0
        self.connect_latency.flush()

    def _hopeless(self) -> bool:
        return not self.slots and self.connect_errors.total() >= GIVE_UP_AFTER

    async def _open(self, index: int, factory: Callable[[], P]) -> P | None:
        """Connection ``index`` with the protocol ``factory`` makes; ``None`` if it
        failed to open (counted by reason)."""
        target, loop = self.target, asyncio.get_running_loop()
        try:
            sock = socket.socket(target.family, socket.SOCK_STREAM)
        except OSError as exc:
            self.connect_errors[classify(exc)] += 1
            return None
        started = monotonic_ns()
        try:
            sock.setblocking(False)
            source = target.source_for(index)
            if source is not None:
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((source, 0))
            async with asyncio.timeout(self.config.connect_timeout):
                await loop.sock_connect(sock, target.sockaddr)
                source = source or _local_address(sock)
                _, protocol = await loop.create_connection(
                    factory,
                    sock=sock,
                    ssl=self._tls,
                    server_hostname=target.host if self._tls else None,
                )
        except OSError as exc:  # TimeoutError and TLS failures included
            sock.close()
            self.connect_errors[classify(exc)] += 1
            return None
        self.connect_latency.record(monotonic_ns() - started)
        self.sources[source] += 1
        self.connects += 1
        return protocol

    def _idle_connection(self) -> IdleConnection:
        return IdleConnection(*idle_exchange(self.config.expect, self.config.suffix))

    def _connection(self, index: int, first_sequence: int) -> ClosedLoopProtocol | OpenLoopProtocol:
        cap = self.config.in_flight_cap
        if self.config.mode == "open":
            return OpenLoopProtocol(index, self.tally, self._on_done, cap)
        assert cap is not None
        return ClosedLoopProtocol(
            index,
            self.tally,
            self._on_done,
            cap,
            first_sequence=first_sequence,
            churn=self.config.churn,
            on_churn=self._on_churn,
        )

    # -- traffic -------------------------------------------------------------

    async def run(self, start_ns: int | None = None) -> None:
        """Warm up, measure until the duration or message count is reached, drain.

        ``start_ns`` (monotonic) lets several processes start together.
        Returns early when :meth:`stop` is called or every connection is gone.
        """
        await _sleep_until(monotonic_ns() if start_ns is None else start_ns)
        if self._finished.is_set():
            return  # stopped while connecting
        # The agreed instant, not when this process woke: every process then
        # has the same window, however late its loop let it start.
        start = monotonic_ns() if start_ns is None else start_ns
        live = [connection for connection in self.slots.values() if connection.is_open]
        self._busy = len(live)
        if not live:
            self._end(start)
            return
        self.phase = "warmup"
        self._start_ticker()
        self.hiccups.start()
        # CPU counts from the first request: a loop too busy to end its
        # warm-up on time still reports how busy it was.
        self._cpu_start, self._cpu_wall_start = time.process_time(), monotonic_ns()
        self._plan_window(start)
        self._start_traffic(live, start)
        try:
            # Even a zero wait would yield to the loop, and replies arriving
            # then would be dropped as warm-up: skip it.
            warmup = (start - monotonic_ns()) / NS_PER_S + self.config.warmup
            if not (self.config.warmup and await self._wait_finished(max(0.0, warmup))):
                self._begin_measuring()
                if self._window_scheduled_end != NEVER:
                    self._end_on_time()
                try:
                    await self._finished.wait()
                finally:
                    if self._end_timer is not None:
                        self._end_timer.cancel()
        finally:
            self._end()
            await self._drain()

    def _end_on_time(self) -> None:
        """End the window at its planned end, not before: loop timers count in
        whole milliseconds of a cached clock and may fire a little early."""
        remaining = (self._window_scheduled_end - monotonic_ns()) / NS_PER_S
        if remaining > 0:
            loop = asyncio.get_running_loop()
            self._end_timer = loop.call_later(remaining, self._end_on_time)
        else:
            self._end()

    def stop(self) -> None:
        """End the run now; what was measured so far is the result."""
        self._end()
        self._drained.set()  # do not wait for replies either

    def _plan_window(self, start: int) -> None:
        """Fix the window on the clock before the first request goes out."""
        config, tally = self.config, self.tally
        window_start = start + int(config.warmup * NS_PER_S)
        if config.time_limit is not None:
            self._window_scheduled_end = window_start + int(config.time_limit * NS_PER_S)
        # Closed loop with --messages counts from the moment the quotas are
        # handed out (see _begin_measuring); everything else from the plan.
        if config.mode == "open" or config.messages is None:
            tally.open_window(window_start, self._window_scheduled_end)
        tally.send_until = self._window_scheduled_end
        self._timeline = Timeline(window_start, self.tally.second_ns)

    def _start_traffic(self, live: list[BenchConnection], start: int) -> None:
        config = self.config
        if config.rate is None:
            for connection in live:
                assert isinstance(connection, ClosedLoopConnection)
                connection.start()
            return
        self._schedule = Schedule(
            start,
            config.rate,
            rate_to=config.rate_to,
            ramp_start=self.tally.window_start,
            ramp_s=config.ramp,
        )
        total = None
        if config.messages is not None:
            # Warm-up messages come on top: exactly --messages are measured.
            total = self._schedule.count_before(self.tally.window_start) + config.messages
        opened = [c for c in live if isinstance(c, OpenLoopConnection)]
        self._pacer = Pacer(opened, self._schedule, total)
        self._pacer.start()

    def _begin_measuring(self) -> None:
        now = monotonic_ns()
        self.phase = "measuring"
        messages = self.config.messages
        if messages is None or self.config.rate is not None:
            return
        self.tally.open_window(now, NEVER)
        self._timeline = Timeline(now, self.tally.second_ns)
        closed = [c for c in self.slots.values() if isinstance(c, ClosedLoopConnection)]
        live = [c for c in closed if c.is_open]
        for position, connection in enumerate(live):
            quota = messages // len(live) + (position < messages % len(live))
            connection.set_quota(quota, now)

    async def _wait_finished(self, seconds: float) -> bool:
        """Wait ``seconds``; whether the run finished meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._finished.wait()
        return self._finished.is_set()

    def _on_done(self, connection: BenchConnection, now: int) -> None:
        if self.phase not in ("warmup", "measuring", "draining"):
            return
        self._busy -= 1
        if self._busy <= 0:
            self._end(now)
            self._drained.set()

    def _end(self, now: int | None = None) -> None:
        """Close the window: at its planned end, or now if that comes first."""
        if self._finished.is_set():
            return
        now = monotonic_ns() if now is None else now
        tally = self.tally
        if self.phase != "measuring":
            tally.window_start = min(tally.window_start, now)
        if not self._cpu_wall_start:  # ended before any traffic
            self._cpu_start, self._cpu_wall_start = time.process_time(), now
        end = min(now, self._window_scheduled_end)
        tally.window_end = min(tally.window_end, max(end, tally.window_start))
        tally.send_until = min(tally.send_until, now)
        self._measure_start, self._measure_end = tally.window_start, tally.window_end
        self._cpu_end, self._cpu_wall_end = time.process_time(), now
        if self.phase in ("warmup", "measuring"):
            self.phase = "draining"
        self._finished.set()

    async def _drain(self) -> None:
        """Stop sending; wait for the replies to the window's requests, up to
        ``--timeout`` (the sweep expires the late ones), then account for all."""
        now = monotonic_ns()
        if self._pacer is not None:
            # Due in the window but not out yet because the loop was busy when
            # it ended: sent now, late (their send lag says so).
            self._pacer.catch_up(self.tally.window_end)
            self._pacer.stop()
            # Window messages the pacer still never handed out (the schedule's
            # count and its due instants may round apart at the edge) are unsent.
            first = self._schedule_index(self.tally.window_start)
            assert self._schedule is not None
            for message in range(max(first, self._pacer.scheduled), first + self._due()):
                self.tally.count_unsent(self._schedule.due(message), now)
        for connection in self.slots.values():
            connection.stop_sending()
        for connection in list(self.slots.values()):
            connection.settle(now)
        if self._busy > 0 and not self._drained.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.timeout + 2 * self._sweep_ns / NS_PER_S):
                    await self._drained.wait()
        deadline = monotonic_ns() - self._timeout_ns
        for connection in self.slots.values():
            connection.give_up(deadline)
        self._record_latencies()
        self._take_hiccups()
        self.phase = "done"

    async def check_idle(self) -> None:
        """One verified round trip on every idle connection: which are still alive."""
        checks = (idle.check(self.config.timeout) for idle in self.idle_connections)
        self.idle_alive = sum(await asyncio.gather(*checks))

    # -- churn ---------------------------------------------------------------

    def _on_churn(self, old: ClosedLoopConnection) -> None:
        task = asyncio.get_running_loop().create_task(self._reopen(old))
        self._reopening.add(task)
        task.add_done_callback(self._reopening.discard)

    async def _reopen(self, old: ClosedLoopConnection) -> None:
        """Replace a churned connection by a new one that carries on its numbering."""
        new = await self._open(old.index, partial(self._connection, old.index, old.sequence))
        now = monotonic_ns()
        if new is None or self._finished.is_set():
            if new is not None:
                new.close()
            self._busy -= 1
            if self._busy <= 0:
                self._end(now)
                self._drained.set()
            return
        assert isinstance(new, ClosedLoopConnection)
        self.slots[old.index] = new
        new.carry_on(old)
        new.limit = old.limit
        new.start()

    # -- observing and closing -----------------------------------------------

    def progress(self) -> Progress:
        """Where the run stands."""
        return Progress(
            phase=self.phase,
            connected=len(self.slots),
            connect_failed=self.connect_errors.total(),
            alive=sum(connection.is_open for connection in self.slots.values()),
            messages=self.latency.count,
            errors=self._errors(),
        )

    def _errors(self) -> int:
        tally = self.tally
        return tally.lost.total() + tally.mismatches + tally.timed_out

    def partial(self) -> PartialResult:
        """This process's measurements, ready to merge."""
        self._record_latencies()
        tally = self.tally
        connections = list(self.slots.values())
        for connection in connections:
            connection.close_window()
        if self._timeline is not None:
            self._timeline.finish(
                errors=self._errors(),
                connections=self.tally.open,
                connects=self.connects,
                starved=tally.starved_seconds,
            )
        due = sent = None
        if self._schedule is not None:
            due = self._due()
            sent = due - tally.unsent
        answered = self.latency.count
        return PartialResult(
            connections=self.config.connections,
            connected=len(self.slots),
            connect_errors=dict(self.connect_errors),
            lost=dict(tally.lost),
            mismatches=tally.mismatches,
            examples=list(tally.examples),
            measure_start_ns=self._measure_start,
            measure_end_ns=self._measure_end,
            cpu_s=self._cpu_end - self._cpu_start,
            latency=self.latency.histogram.encode(),
            connect_latency=self.connect_latency.histogram.encode(),
            connects_timed=self.connect_latency.count,
            uncorrected=self.uncorrected.histogram.encode(),
            send_lag=self.send_lag.histogram.encode(),
            unsent_age=self.unsent_age.histogram.encode(),
            pacer_precise=self._pacer is not None and self._pacer.precise,
            mismatch_kinds=dict(tally.mismatch_kinds),
            sent=answered + tally.timed_out + tally.unanswered if sent is None else sent,
            answered=answered,
            timed_out=tally.timed_out,
            unanswered=tally.unanswered,
            due=due,
            late=tally.late,
            sent_after_window=tally.sent_after_window,
            unsent=tally.unsent,
            cpu_wall_s=(self._cpu_wall_end - self._cpu_wall_start) / NS_PER_S,
            loop_lag=self.loop_lag.encode(),
            connect_loop_lag=self.connect_loop_lag.encode(),
            sources=dict(self.sources),
            connect_start_ns=self._connect_start,
            connect_end_ns=self._connect_end,
            rss_before=self._rss_before,
            rss_after=self._rss_after,
            timeline=[] if self._timeline is None else list(self._timeline.seconds),
            second_ns=self.tally.second_ns,
            trips_per_connection=[connection.window_trips for connection in connections],
            longest_gaps_us=[connection.longest_gap // 1000 for connection in connections],
            starved=sum(connection.starved for connection in connections),
            idle=self.config.idle,
            idle_connected=len(self.idle_connections),
            idle_alive=self.idle_alive,
            connects=self.connects,
        )

    def _schedule_index(self, instant: int) -> int:
        assert self._schedule is not None
        return self._schedule.count_before(instant)

    def _due(self) -> int:
        """Open loop: messages the schedule put in the window."""
        tally = self.tally
        before_start = self._schedule_index(tally.window_start)
        by_end = self._schedule_index(tally.window_end)
        if self.config.messages is not None:
            by_end = min(by_end, before_start + self.config.messages)
        return max(0, by_end - before_start)

    async def close(self) -> None:
        """Half-close every connection, give servers a moment to close, abort the rest."""
        self._end()
        self.phase = "closing"
        self._stop_ticker()
        self.hiccups.stop()
        for task in list(self._reopening):
            task.cancel()
        for connection in self.slots.values():
            connection.stop_sending()
            connection.close()
        if self.tally.open:
            self.tally.all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_GRACE):
                    await self.tally.all_closed.wait()
        for connection in self.slots.values():
            if not connection.closed:
                connection.abort()
        for idle in self.idle_connections:
            idle.close()
        await asyncio.sleep(0)  # let the aborted transports call connection_lost

    # -- the ticker: latencies, timeouts, loop lag, timeline, progress --------

    def _start_ticker(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._tick)

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self) -> None:
        now = monotonic_ns()
        if self.tally.latency.marked or now >= self.tally.next_second_at:
            self._record_latencies()  # a second is over: its latencies go to the timeline
        if self.phase in ("warmup", "measuring", "draining") and now >= self._next_sweep:
            self._next_sweep = now + self._sweep_ns
            self._sweep(now)
        if self._timeline is not None and self.phase in ("measuring", "draining"):
            self._timeline.advance(
                min(now, self.tally.window_end),
                errors=self._errors(),
                connections=self.tally.open,
                connects=self.connects,
            )
        self._ticks += 1
        if self._on_progress is not None and self._ticks % PROGRESS_EVERY == 0:
            self._on_progress(self.progress())
        self._start_ticker()

    def _record_latencies(self) -> None:
        for second, counts in self.latency.flush():
            if self._timeline is not None:
                self._timeline.record(second, counts)
        for recorder in (self.uncorrected, self.send_lag, self.unsent_age, self.connect_latency):
            recorder.flush()

    def _take_hiccups(self) -> None:
        """The loop's hiccups while traffic flowed (a busy loop reports them late)."""
        if self.phase in ("warmup", "measuring", "draining"):
            self.loop_lag.add(self.hiccups.take())

    def _sweep(self, now: int) -> None:
        """Give up on connections whose oldest request is older than --timeout."""
        deadline = now - self._timeout_ns
        for connection in list(self.slots.values()):
            if connection.is_open and connection.overdue(deadline):
                connection.expire(deadline)


def _local_address(sock: socket.socket) -> str:
    with contextlib.suppress(OSError):
        address: str = sock.getsockname()[0]
        return address
    return "unknown"


async def _sleep_until(when_ns: int) -> None:
    delay = (when_ns - monotonic_ns()) / NS_PER_S
    if delay > 0:
        await asyncio.sleep(delay)
