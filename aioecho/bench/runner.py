"""Running a benchmark: the target, the client processes, the merged result.

With one client process the load runs in this process. With several, each
is a child (``python -m aioecho.bench.client_process``, started as every
child of the package is, :mod:`aioecho.process.spawn`) running its own event
loop and its share of the connections, over a socket pair to this
process; they connect, report in, start traffic at one agreed instant of
the machine-wide monotonic clock, and send back encoded histograms that
merge exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import socket
import subprocess
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from time import monotonic_ns
from typing import Any

from ..loops import resolve_loop, run_on
from ..process import spawn
from .config import BenchConfig, BenchConfigError
from .load import LoadEngine, Progress, ProgressCallback
from .memory import ServerMemory
from .payload import Payload
from .provenance import provenance
from .result import NS_PER_S, BenchResult, PartialResult, merge
from .search import find_max_rate
from .server_cpu import ServerCpu, ServerProbes
from .target import Target, open_target, resolve, usable_descriptors

# Traffic starts this long after the last process connected, so that every
# process has received the start time before it arrives.
START_DELAY_NS = 100_000_000
# How often the parent checks for a stop request while waiting on workers.
POLL_INTERVAL = 0.1
CLIENT_MODULE = "aioecho.bench.client_process"
# A client process that has sent its result exits at once; past this it is killed.
CLIENT_EXIT_TIMEOUT = 5.0
# How often the combined progress of the workers is reported.
REPORT_NS = 400_000_000
PHASE_ORDER = ("idle", "connecting", "warmup", "measuring", "draining", "done", "closing")


class WorkerError(RuntimeError):
    """A client process failed; the message holds its traceback."""


class Interruption:
    """Whether Ctrl-C ended a measurement (a saturation search then stops too)."""

    def __init__(self) -> None:
        self.happened = False


def run(
    config: BenchConfig,
    *,
    on_progress: ProgressCallback | None = None,
    handle_interrupt: bool = False,
    command: Sequence[str] | None = None,
) -> BenchResult:
    """Run a benchmark to completion and return its result (blocking).

    ``command`` is recorded in the result as the command line that asked for it.

    Starts the local server when ``config`` names no target. With
    ``handle_interrupt``, SIGINT ends the measurement early and the result
    covers what was measured (for the command line; libraries leave signals
    alone).

    Raises :class:`~aioecho.bench.target.TargetError` when the target cannot
    be resolved or the local server does not start,
    :class:`~aioecho.extras.MissingExtraError` for a missing loop, and
    :class:`WorkerError` if a client process crashes. Connection failures
    and wrong replies are not exceptions: they are in the result.
    """
    loop = resolve_loop(config.loop)
    descriptors = usable_descriptors()
    origin = provenance(command)
    interrupted = Interruption()
    with open_target(config) as (target, server):
        # Server memory per connection means something only on a server the
        # harness started, before a first run left its allocations behind.
        fresh = server is not None

        def measure(step: BenchConfig) -> BenchResult:
            nonlocal fresh
            processes = plan_processes(step, target, descriptors, local_server=server is not None)
            probes = ServerProbes(
                ServerMemory.of_local_port(target.port) if fresh else None,
                ServerCpu.of_local_port(target.port) if target.is_local else None,
            )
            fresh = False
            if processes == 1:
                single = _run_engine(
                    step, target, on_progress, handle_interrupt, probes, interrupted
                )
                parts: Sequence[PartialResult] = [run_on(loop, single)]
            else:
                parts = _fan_out(
                    step, target, processes, on_progress, handle_interrupt, probes, interrupted
                )
            result = _merge(parts, step, target, server, loop.name)
            return dataclasses.replace(
                result,
                **origin,
                server_bytes_per_connection=probes.bytes_per_connection(result.connected),
                server_cpu_us_per_rt=probes.cpu_us_per_round_trip(result.messages),
            )

        if config.find_max_rate is not None:
            return find_max_rate(config, measure, stopped=lambda: interrupted.happened)
        return measure(config)


async def run_async(config: BenchConfig, *, second: float = 1.0) -> BenchResult:
    """Run a benchmark in this process, on the running event loop.

    For test suites and notebooks: ``config`` must name a target
    (``host``/``port``), which may be a server on this same loop. One
    process; ``config.processes`` and ``config.loop`` are ignored.
    ``second`` is how long one entry of the result's timeline lasts: a test
    of the timeline may compress time with a shorter one.
    """
    if config.spawns_server:
        raise BenchConfigError("run_async needs a target: set host and port")
    if not second > 0:
        raise BenchConfigError(f"second must be positive, not {second}")
    host, port = config.host or "127.0.0.1", config.port or 0
    origin = provenance()
    usable_descriptors()
    target = await asyncio.to_thread(resolve, host, port, config.connections)
    second_ns = int(second * NS_PER_S)
    probes = ServerProbes(None, None)
    part = await _run_engine(
        config, target, None, False, probes, Interruption(), second_ns=second_ns
    )
    running: Any = asyncio.get_running_loop()
    loop = "uvloop" if type(running).__module__.startswith("uvloop") else "asyncio"
    return dataclasses.replace(_merge([part], config, target, None, loop), **origin)


def plan_processes(
    config: BenchConfig, target: Target, descriptors: int, *, local_server: bool
) -> int:
    """How many client processes to use.

    Unless ``--processes`` says, from the cores, leaving the server its
    share when it runs on this machine:

    - a local aioecho started by the benchmark runs on one core, and one
      client process drives about what one aioecho core serves: up to 2
      client processes, and never every core (on 2 cores: 1);
    - another server on this machine: half the cores, the rest are its;
    - a remote server: every core.

    Never fewer than the open-file limit requires: one descriptor per
    connection.
    """
    if config.processes is not None:
        wanted = config.processes
    else:
        cores = os.cpu_count() or 1
        if local_server:
            wanted = max(1, min(2, cores - 1))
        elif target.is_local:
            wanted = max(1, cores // 2)
        else:
            wanted = cores
        wanted = max(wanted, math.ceil(config.connections / descriptors))
    return max(1, min(wanted, config.connections, config.messages or wanted))


def split(config: BenchConfig, processes: int) -> list[tuple[BenchConfig, int]]:
    """Each process's share of the load, with the index of its first connection."""
    shares, first = [], 0
    for number in range(processes):
        connections = _part(config.connections, processes, number)
        fraction = connections / config.connections
        share = dataclasses.replace(
            config,
            connections=connections,
            idle=_part(config.idle, processes, number),
            processes=1,
            messages=None if config.messages is None else _part(config.messages, processes, number),
            rate=None if config.rate is None else config.rate * fraction,
            rate_to=None if config.rate_to is None else config.rate_to * fraction,
            connect_rate=None if config.connect_rate is None else config.connect_rate * fraction,
        )
        shares.append((share, first))
        first += connections
    return shares


def _part(total: int, parts: int, number: int) -> int:
    return total // parts + (number < total % parts)


def _merge(
    parts: Sequence[PartialResult],
    config: BenchConfig,
    target: Target,
    server: str | None,
    loop: str,
) -> BenchResult:
    return merge(
        parts,
        config,
        target=target.description,
        server=server,
        loop=loop,
        request_size=config.size,
        reply_size=Payload.reply_size(config.size, config.expect, config.suffix),
    )


async def _run_engine(
    config: BenchConfig,
    target: Target,
    on_progress: ProgressCallback | None,
    handle_interrupt: bool,
    probes: ServerProbes,
    interrupted: Interruption,
    *,
    second_ns: int = NS_PER_S,
) -> PartialResult:
    engine = LoadEngine(config, target, on_progress=on_progress, second_ns=second_ns)
    loop = asyncio.get_running_loop()

    def on_interrupt() -> None:
        interrupted.happened = True
        engine.stop()

    if handle_interrupt:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        probes.before_connecting()
        await engine.connect()
        probes.after_connecting()
        start = monotonic_ns()
        probes.window_starts_at(start + int(config.warmup * NS_PER_S))
        await engine.run(start)
        probes.traffic_over()
        await engine.check_idle()
        return engine.partial()
    finally:
        await engine.close()
        if handle_interrupt:
            loop.remove_signal_handler(signal.SIGINT)


# -- several processes -------------------------------------------------------


def _fan_out(
    config: BenchConfig,
    target: Target,
    processes: int,
    on_progress: ProgressCallback | None,
    handle_interrupt: bool,
    probes: ServerProbes,
    interruption: Interruption,
) -> list[PartialResult]:
    workers: list[tuple[subprocess.Popen[bytes], Connection]] = []
    probes.before_connecting()
    try:
        for share, first in split(config, processes):
            ours, theirs = socket.socketpair()
            with theirs:
                task = ClientTask(theirs.fileno(), share, target, first, config.connections)
                process = spawn.start(CLIENT_MODULE, task, pass_fds=(theirs.fileno(),))
            workers.append((process, Connection(ours.detach())))
        with _interrupt_flag(handle_interrupt) as interrupted:
            pipes = [pipe for _, pipe in workers]
            parts = _coordinate(pipes, on_progress, interrupted, probes, config.warmup)
            interruption.happened = interruption.happened or interrupted()
            return parts
    finally:
        for worker, pipe in workers:
            pipe.close()  # a client still running sees the end of its pipe, and ends
            try:
                worker.wait(timeout=CLIENT_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _coordinate(
    pipes: list[Connection],
    on_progress: ProgressCallback | None,
    interrupted: Callable[[], bool],
    probes: ServerProbes,
    warmup_s: float,
) -> list[PartialResult]:
    """Collect "connected" from all, send "go", collect "ran" and "done" from all."""
    active = {pipe: number for number, pipe in enumerate(pipes)}
    progress: dict[int, Progress] = {}
    connected: set[int] = set()
    ran: set[int] = set()
    results: dict[int, PartialResult] = {}
    stopping = False
    last_report = monotonic_ns()
    while active:
        if interrupted() and not stopping:
            stopping = True
            for pipe in active:
                with contextlib.suppress(OSError):  # it may be exiting already
                    pipe.send(("stop",))
        for ready in wait(list(active), timeout=POLL_INTERVAL):
            assert isinstance(ready, Connection)
            number = active[ready]
            try:
                kind, *payload = ready.recv()
            except EOFError:
                raise WorkerError(f"client process {number} exited unexpectedly") from None
            if kind == "failed":
                raise WorkerError(f"client process {number} failed:\n{payload[0]}")
            if kind == "progress":
                progress[number] = payload[0]
            elif kind == "connected":
                connected.add(number)
                if len(connected) == len(pipes) and not stopping:
                    probes.after_connecting()
                    start = monotonic_ns() + START_DELAY_NS
                    probes.window_starts_at(start + int(warmup_s * NS_PER_S))
                    for pipe in pipes:
                        pipe.send(("go", start))
            elif kind == "ran":
                ran.add(number)
                if len(ran) == len(pipes):
                    probes.traffic_over()
            elif kind == "done":
                results[number] = payload[0]
                del active[ready]
        if on_progress is not None and progress and monotonic_ns() - last_report > REPORT_NS:
            last_report = monotonic_ns()
            on_progress(_combine(list(progress.values())))
    return [results[number] for number in range(len(pipes))]


def _combine(progresses: list[Progress]) -> Progress:
    return Progress(
        phase=min((p.phase for p in progresses), key=PHASE_ORDER.index),
        connected=sum(p.connected for p in progresses),
        connect_failed=sum(p.connect_failed for p in progresses),
        alive=sum(p.alive for p in progresses),
        messages=sum(p.messages for p in progresses),
        errors=sum(p.errors for p in progresses),
    )


@contextlib.contextmanager
def _interrupt_flag(enabled: bool) -> Iterator[Callable[[], bool]]:
    """Turn SIGINT into a flag the coordinator polls, while the workers run."""
    hits: list[int] = []
    if not enabled:
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class ClientTask:
    """What a client process is handed: its pipe's descriptor and its share of the load."""

    pipe_fd: int
    config: BenchConfig
    target: Target
    first_index: int
    total: int


def worker_main(task: ClientTask) -> None:
    """A client process: connect, report, wait for "go", run, send the result.

    Its pipe is the task's descriptor; SIGINT is ignored already
    (:mod:`aioecho.bench.client_process`): the parent decides when to stop.
    """
    pipe = Connection(task.pipe_fd)
    try:
        usable_descriptors()
        with asyncio.Runner(loop_factory=resolve_loop(task.config.loop).factory) as runner:
            engine = LoadEngine(
                task.config,
                task.target,
                first_index=task.first_index,
                total_connections=task.total,
                on_progress=lambda progress: pipe.send(("progress", progress)),
            )
            try:
                runner.run(engine.connect())
                pipe.send(("connected",))
                command = pipe.recv()
                if command[0] == "go":
                    runner.run(_run_until_told(engine, pipe, command[1]))
                pipe.send(("ran",))
                runner.run(engine.check_idle())
                partial = engine.partial()
            finally:
                runner.run(engine.close())
        pipe.send(("done", partial))
    except BaseException:
        pipe.send(("failed", traceback.format_exc()))


async def _run_until_told(engine: LoadEngine, pipe: Connection, start_ns: int) -> None:
    loop = asyncio.get_running_loop()

    def on_message() -> None:
        if pipe.poll():
            pipe.recv()  # the only message after "go" is "stop"
            engine.stop()

    loop.add_reader(pipe.fileno(), on_message)
    try:
        await engine.run(start_ns)
    finally:
        loop.remove_reader(pipe.fileno())
