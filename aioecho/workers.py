"""Several worker processes on one port, under a supervising parent.

:func:`aioecho.run.run_server` comes here when ``workers`` is above 1. The
parent binds first, so that a busy address fails once, in one line, and port
0 resolves to one port for every worker. It then starts the workers
(``python -m aioecho.worker``, see :mod:`aioecho.worker`), restarts one that
exits with a back-off, serves the metrics and stats lines summed over all of
them, and on SIGINT or SIGTERM stops them all gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .binding import bind_tcp, bind_unix, remove_unix_socket
from .config import ServerConfig
from .loops import LoopName
from .run import StopSignals, announce_metrics, announce_serving, format_address, listen_failed
from .stats import Counters, Stats, log_stats_every
from .worker import RECORD_SIZE, WorkerSpec, decode_stats

logger = logging.getLogger("aioecho")

# Linux spreads the connections of a port over its SO_REUSEPORT listeners;
# BSD and macOS accept the option but give every connection to one of them,
# so there the workers share one listening socket instead.
REUSE_PORT_BALANCES = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")

# A worker that keeps dying waits twice as long before each restart, up to the
# maximum; one that stayed up STABLE_UPTIME seconds starts over at the minimum.
RESTART_DELAY_MIN = 0.5
RESTART_DELAY_MAX = 30.0
STABLE_UPTIME = 10.0

# What a stopping worker may take beyond its shutdown timeout (its last
# record, interpreter exit) before it is killed.
STOP_MARGIN = 5.0

# -P: no working directory on the path; the workers get the parent's sys.path
# instead, so that they run the very code the parent runs.
WORKER_COMMAND = (sys.executable, "-P", "-m", "aioecho.worker")


def next_restart_delay(previous: float | None, uptime: float) -> float:
    """Seconds before restarting a worker that exited after ``uptime`` seconds.

    ``previous`` is the delay before its last restart (None: never restarted).
    """
    if previous is None or uptime >= STABLE_UPTIME:
        return RESTART_DELAY_MIN
    return min(previous * 2, RESTART_DELAY_MAX)


async def supervise(config: ServerConfig, loop_name: LoopName) -> int:
    """Run ``config.workers`` worker processes until SIGINT or SIGTERM; the exit code."""
    try:
        sockets, inherited = bind_for_workers(config)
    except OSError as exc:
        return listen_failed(config, exc)
    try:
        return await _supervise(config, loop_name, sockets, inherited)
    finally:
        for sock in sockets:
            sock.close()
        if config.unix is not None:
            remove_unix_socket(config.unix)  # the workers leave it to the parent


def bind_for_workers(config: ServerConfig) -> tuple[list[socket.socket], bool]:
    """The parent's sockets, and whether the workers serve them (else they bind beside them)."""
    if config.unix is not None:
        # Unix sockets have no SO_REUSEPORT: one socket, inherited by every worker.
        return [bind_unix(config.unix, config.backlog)], True
    if REUSE_PORT_BALANCES:
        # Bound without SO_REUSEPORT and not listening: the bind fails on a port
        # that some server listens on, and the socket holds the port (port 0
        # included) across worker restarts without taking connections. The
        # workers' SO_REUSEPORT listeners may share its port as it never listens.
        return bind_tcp(config.hosts, config.port, config.backlog, listen=False), False
    return bind_tcp(config.hosts, config.port, config.backlog), True


async def _supervise(
    config: ServerConfig, loop_name: LoopName, sockets: list[socket.socket], inherited: bool
) -> int:
    addresses = [sock.getsockname()[:2] for sock in sockets if sock.family != socket.AF_UNIX]
    pool = WorkerPool(config, loop_name, sockets, inherited)
    stop = StopSignals(force=pool.force_stop)
    metrics: asyncio.Server | None = None
    stats_lines: asyncio.Task[None] | None = None
    try:
        if config.metrics_port is not None:
            metrics = await _start_metrics(config, pool.stats)
            if metrics is None:
                return 1
        pool.start()
        await _any_set(pool.ready, pool.failed, stop.requested)
        if pool.failed.is_set():
            await pool.stop()
            return 1
        if not stop.requested.is_set():
            announce_serving(config, addresses, loop_name)
            announce_metrics(
                [sock.getsockname()[:2] for sock in metrics.sockets] if metrics else []
            )
            if config.stats_interval:
                stats_lines = asyncio.create_task(
                    log_stats_every(config.stats_interval, pool.stats)
                )
            await stop.requested.wait()
        grace = config.shutdown_timeout
        logger.info("shutting down the workers (grace %.1f s; signal again to force)", grace)
        await pool.stop()
    finally:
        stop.remove()
        if stats_lines is not None:
            stats_lines.cancel()
        if metrics is not None:
            metrics.close()
    logger.info("stopped")
    return 0


async def _start_metrics(
    config: ServerConfig, snapshot: Callable[[], Stats]
) -> asyncio.Server | None:
    """The summed metrics endpoint, or None (logged) if its port cannot be used."""
    from .metrics import start_metrics

    host, port = config.hosts[0], config.metrics_port or 0
    try:
        return await start_metrics(snapshot, host, port)
    except OSError as exc:
        reason = exc.strerror or exc
        logger.error("cannot serve metrics on %s: %s", format_address((host, port)), reason)
        return None


async def _any_set(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@dataclass
class _Worker:
    """One worker slot; its process changes when it is restarted."""

    number: int
    process: asyncio.subprocess.Process | None = None
    stats: Stats | None = None
    """The running process's latest counters; None until it accepts."""

    def describe(self) -> str:
        pid = self.process.pid if self.process is not None else "-"
        return f"worker {self.number} (pid {pid})"


class WorkerPool:
    """The worker processes: started, restarted, stopped; their counters summed."""

    def __init__(
        self,
        config: ServerConfig,
        loop_name: LoopName,
        sockets: list[socket.socket],
        inherited: bool,
    ) -> None:
        port = config.port if config.unix is not None else sockets[0].getsockname()[1]
        # Metrics and stats lines are the parent's, summed over the workers.
        self._worker_config = dataclasses.replace(
            config, port=port, workers=1, metrics_port=None, stats_interval=0.0
        )
        self._shutdown_timeout = config.shutdown_timeout
        self._loop_name = loop_name
        self._listen_fds = tuple(sock.fileno() for sock in sockets) if inherited else ()
        self._workers = [_Worker(number) for number in range(1, config.workers + 1)]
        self._retired = Counters().snapshot()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once every worker has accepted connections."""
        self.failed = asyncio.Event()
        """Set if a worker exits before all were ready: the service cannot start."""

    def start(self) -> None:
        """Start every worker; ``ready`` or ``failed`` tells how it went."""
        self._tasks = [asyncio.create_task(self._keep_running(w)) for w in self._workers]

    async def stop(self) -> None:
        """Stop the workers gracefully; kill those still running after their grace time."""
        self._stopping.set()
        self.signal_all()
        grace = self._shutdown_timeout + STOP_MARGIN
        _, running = await asyncio.wait(self._tasks, timeout=grace)
        if running:
            logger.warning("%d worker(s) still running after %.1f s: killing", len(running), grace)
            self.signal_all(signal.SIGKILL)
            await asyncio.wait(running)

    def force_stop(self) -> None:
        """Make the workers close every connection now: their second stop signal.

        SIGINT, not another SIGTERM: a signal sent while the same one is still
        pending is merged with it, and a busy worker would see only one.
        """
        self.signal_all(signal.SIGINT)

    def signal_all(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to every running worker."""
        for worker in self._workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    def stats(self) -> Stats:
        """Every worker's counters summed, including those of exited workers."""
        running = (worker.stats for worker in self._workers if worker.stats is not None)
        return sum(running, self._retired)

    async def _keep_running(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        delay: float | None = None
        while True:
            started = loop.time()
            code = await self._run_once(worker)
            if self._stopping.is_set():
                if code is not None and code > 0:  # signals while stopping are the parent's
                    logger.warning("%s %s while stopping", worker.describe(), _exit_reason(code))
                return
            if not self.ready.is_set():
                logger.error("%s %s before it was ready", worker.describe(), _exit_reason(code))
                self.failed.set()
                return
            delay = next_restart_delay(delay, loop.time() - started)
            reason = _exit_reason(code)
            logger.warning("%s %s; restarting in %.1f s", worker.describe(), reason, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return

    async def _run_once(self, worker: _Worker) -> int | None:
        """Run one process of the worker until it exits: its exit code (None: not started)."""
        worker.process = None
        read_fd, write_fd = os.pipe()
        try:
            worker.process = await asyncio.create_subprocess_exec(
                *WORKER_COMMAND,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd, *self._listen_fds),
                # Its own session: a terminal's Ctrl-C reaches the parent only,
                # which forwards it once (twice would force the stop).
                start_new_session=True,
            )
        except OSError as exc:
            logger.error("cannot start worker %d: %s", worker.number, exc)
            os.close(read_fd)
            return None
        finally:
            os.close(write_fd)
        status = _StatusReader(read_fd, lambda stats: self._on_status(worker, stats))
        spec = WorkerSpec(
            worker.number,
            self._worker_config,
            self._loop_name,
            logger.getEffectiveLevel(),
            write_fd,
            self._listen_fds,
        )
        assert worker.process.stdin is not None
        worker.process.stdin.write(pickle.dumps(spec))
        worker.process.stdin.close()
        if self._stopping.is_set():
            self.signal_all()  # the stop began while this one was starting
        code = await worker.process.wait()
        await status.closed.wait()  # its last record is in
        self._retire(worker)
        return code

    def _on_status(self, worker: _Worker, stats: Stats) -> None:
        first = worker.stats is None
        worker.stats = stats
        if first:
            logger.info("%s accepting", worker.describe())
            if all(other.stats is not None for other in self._workers):
                self.ready.set()

    def _retire(self, worker: _Worker) -> None:
        """Keep an exited worker's totals, so that the sums never go back."""
        if worker.stats is not None:
            self._retired += dataclasses.replace(worker.stats, connections_active=0)
            worker.stats = None


class _StatusReader:
    """The parent's end of a worker's status pipe: stats records until end of file."""

    def __init__(self, fd: int, on_stats: Callable[[Stats], None]) -> None:
        self.closed = asyncio.Event()
        self._fd = fd
        self._on_stats = on_stats
        self._pending = b""
        self._loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * RECORD_SIZE)
        except BlockingIOError:
            return
        if not data:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self.closed.set()
            return
        self._pending += data
        complete = len(self._pending) - len(self._pending) % RECORD_SIZE
        if complete:
            # Counters are totals: only the latest record matters.
            self._on_stats(decode_stats(self._pending[complete - RECORD_SIZE : complete]))
            self._pending = self._pending[complete:]


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"
