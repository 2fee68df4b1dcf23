"""Several worker processes on one port, under a supervising parent.

:func:`aioecho.run_server` comes here when ``workers`` is above 1. The
parent binds first, so that a busy address fails once, in one line, and port
0 resolves to one port for every worker. It then starts the workers
(:mod:`aioecho.process.worker`), restarts one that exits with a back-off,
kills and restarts one that stops reporting (hung, or stopped by SIGSTOP:
the kernel would go on giving it its share of new connections), serves the
metrics and stats lines summed over all of them, and stops them all
gracefully when the lifecycle says so.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import ServerConfig
from ..core import Counters
from ..loops import LoopName
from ..sockets.binding import UnixSocketFile, bind_tcp, bind_unix
from ..stats import Stats, log_stats_every, snapshot
from .lifecycle import ServiceFailed
from .readiness import Readiness
from .spec import WorkerSpec
from .status import StatusReader
from .watchdog import Watchdog

if TYPE_CHECKING:
    from ..metrics import MetricsServer

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

# How long a new worker may take to send its first report (interpreter
# start, imports, binding) before it counts as hung. Generous: a loaded
# machine starts Python slowly, and a first start that fails stops the service.
START_TIMEOUT = 30.0

# How many times per worker_timeout the watchdog looks at the workers.
WATCHDOG_CHECKS_PER_TIMEOUT = 4
# A check this much later than scheduled is worth a log line: the supervisor
# did not run (SIGSTOP, a debugger, a frozen container); shorter delays are
# the loop's ordinary lateness, not counted against the workers either.
WATCHDOG_HELD_UP = 1.0

# -P: no working directory on the path; the workers get the parent's sys.path
# instead, so that they run the very code the parent runs.
WORKER_COMMAND = (sys.executable, "-P", "-m", "aioecho.process.worker")


def next_restart_delay(previous: float | None, uptime: float) -> float:
    """Seconds before restarting a worker that exited after ``uptime`` seconds.

    ``previous`` is the delay before its last restart (None: never restarted).
    """
    if previous is None or uptime >= STABLE_UPTIME:
        return RESTART_DELAY_MIN
    return min(previous * 2, RESTART_DELAY_MAX)


class RestartBackoff:
    """The waits before restarting one worker, timed on ``clock``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._started = clock()
        self._delay: float | None = None

    def started(self) -> None:
        """A process of the worker started now."""
        self._started = self._clock()

    def next_delay(self) -> float:
        """It exited now: seconds to wait before the next start."""
        self._delay = next_restart_delay(self._delay, self._clock() - self._started)
        return self._delay


class WorkersService:
    """``config.workers`` worker processes serving one address, as one service."""

    stopping = "shutting down the workers"

    def __init__(self, config: ServerConfig, loop_name: LoopName) -> None:
        self.config = config
        self.grace = config.shutdown_timeout
        self._loop_name = loop_name
        self._sockets: list[socket.socket] = []
        self._unix_file: UnixSocketFile | None = None
        self._pool: WorkerPool | None = None
        self._metrics: MetricsServer | None = None
        self._stats_lines: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    def readiness(self) -> Readiness:
        addresses = [s.getsockname()[:2] for s in self._sockets if s.family != socket.AF_UNIX]
        metrics = self._metrics.addresses if self._metrics is not None else []
        return Readiness.of(self.config, addresses, metrics, self._loop_name)

    async def stop(self) -> None:
        await self._release()

    def force(self) -> None:
        if self._pool is not None:
            self._pool.force_stop()

    async def _start(self) -> None:
        config = self.config
        inherited = self._bind()
        if config.metrics_port is not None:
            from ..metrics import start_metrics

            self._metrics = await start_metrics(
                self._stats, config.hosts[0], config.metrics_port, self._restarts
            )
        self._pool = WorkerPool(config, self._loop_name, self._sockets, inherited)
        self._pool.start()
        await self._pool.started()
        if config.stats_interval:
            lines = log_stats_every(config.stats_interval, self._pool.stats)
            self._stats_lines = asyncio.create_task(lines)

    def _bind(self) -> bool:
        """Bind the service's sockets; whether the workers serve them (else they bind their own)."""
        config = self.config
        if config.unix is not None:
            # Unix sockets have no SO_REUSEPORT: one socket, inherited by every worker.
            sock, self._unix_file = bind_unix(config.unix, config.backlog, config.unix_mode)
            self._sockets = [sock]
            return True
        if REUSE_PORT_BALANCES:
            # Bound without SO_REUSEPORT and not listening: the bind fails on a port
            # that some server listens on, and the socket holds the port (port 0
            # included) across worker restarts without taking connections. The
            # workers' SO_REUSEPORT listeners may share its port as it never listens.
            self._sockets = bind_tcp(config.hosts, config.port, config.backlog, listen=False)
            return False
        self._sockets = bind_tcp(config.hosts, config.port, config.backlog)
        return True

    async def _release(self) -> None:
        """Stop whatever was started, in reverse order; safe to call at any point."""
        if self._stats_lines is not None:
            self._stats_lines.cancel()
        if self._pool is not None:
            await self._pool.stop()
        if self._metrics is not None:
            self._metrics.close()
        for sock in self._sockets:
            sock.close()
        if self._unix_file is not None:
            self._unix_file.remove()  # the workers leave it to the parent

    def _stats(self) -> Stats:
        return self._pool.stats() if self._pool is not None else snapshot(Counters())

    def _restarts(self) -> dict[str, int]:
        return dict(self._pool.restarts) if self._pool is not None else {}


@dataclass(eq=False)
class _Worker:
    """One worker slot; its process changes when it is restarted."""

    number: int
    process: asyncio.subprocess.Process | None = None
    stats: Stats | None = None
    """The running process's latest counters; None until it accepts."""
    hung: bool = field(default=False)
    """Whether the running process was killed for missing its reports."""

    def describe(self) -> str:
        pid = self.process.pid if self.process is not None else "-"
        return f"worker {self.number} (pid {pid})"


class WorkerPool:
    """The worker processes: started, watched, restarted, stopped; their counters summed."""

    def __init__(
        self,
        config: ServerConfig,
        loop_name: LoopName,
        sockets: list[socket.socket],
        inherited: bool,
        clock: Callable[[], float] | None = None,
    ) -> None:
        port = config.port if config.unix is not None else sockets[0].getsockname()[1]
        # Metrics and stats lines are the parent's, summed over the workers.
        self._worker_config = dataclasses.replace(
            config, port=port, workers=1, metrics_port=None, stats_interval=0.0
        )
        self._shutdown_timeout = config.shutdown_timeout
        self._worker_timeout = config.worker_timeout
        self._loop_name = loop_name
        self._listen_fds = tuple(sock.fileno() for sock in sockets) if inherited else ()
        self._workers = [_Worker(number) for number in range(1, config.workers + 1)]
        self._retired = snapshot(Counters())
        self._tasks: list[asyncio.Task[None]] = []
        self._watching: asyncio.Task[None] | None = None
        self._clock = clock or asyncio.get_running_loop().time
        self._watchdog: Watchdog[_Worker] = Watchdog(
            self._clock, self._worker_timeout / WATCHDOG_CHECKS_PER_TIMEOUT
        )
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._failed = asyncio.Event()
        self.restarts: dict[str, int] = {"exited": 0, "hung": 0}
        """Restarts so far, by reason: the process exited, or it was killed as hung."""

    def start(self) -> None:
        """Start every worker; :meth:`started` tells how it went."""
        self._tasks = [asyncio.create_task(self._keep_running(w)) for w in self._workers]
        self._watching = asyncio.create_task(self._watch())

    async def started(self) -> None:
        """Return once every worker accepts; raise ServiceFailed if one exits before."""
        ready = asyncio.ensure_future(self._ready.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait([ready, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            failed.cancel()
        if self._failed.is_set():
            raise ServiceFailed("a worker exited before the service was ready")

    async def stop(self) -> None:
        """Stop the workers gracefully; kill those still running after their grace time."""
        self._stopping.set()
        if self._watching is not None:
            self._watching.cancel()
        self.signal_all()
        if not self._tasks:
            return
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
            _signal(worker, sig)

    def stats(self) -> Stats:
        """Every worker's counters summed, including those of exited workers."""
        running = (worker.stats for worker in self._workers if worker.stats is not None)
        return sum(running, self._retired)

    async def _watch(self) -> None:
        """Kill the workers that missed their reports: _keep_running restarts them."""
        while True:
            await asyncio.sleep(self._watchdog.until_check())
            overdue = self._watchdog.overdue()
            if self._watchdog.held_up >= WATCHDOG_HELD_UP:
                logger.warning(
                    "the supervisor was held up for %.1f s (stopped or starved): "
                    "not counted against the workers",
                    self._watchdog.held_up,
                )
            for worker in overdue:
                self._watchdog.forget(worker)
                worker.hung = True
                logger.error(
                    "%s sent no status report for %.1f s: killing it",
                    worker.describe(),
                    self._worker_timeout if worker.stats is not None else START_TIMEOUT,
                )
                _signal(worker, signal.SIGKILL)

    async def _keep_running(self, worker: _Worker) -> None:
        backoff = RestartBackoff(self._clock)
        while True:
            backoff.started()
            code = await self._run_once(worker)
            reason = _exit_reason(code)
            if self._stopping.is_set():
                if code is not None and code > 0:  # signals while stopping are the parent's
                    logger.warning("%s %s while stopping", worker.describe(), reason)
                return
            if not self._ready.is_set():
                logger.error("%s %s before it was ready", worker.describe(), reason)
                self._failed.set()
                return
            self.restarts["hung" if worker.hung else "exited"] += 1
            delay = backoff.next_delay()
            logger.warning("%s %s; restarting in %.1f s", worker.describe(), reason, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return

    async def _run_once(self, worker: _Worker) -> int | None:
        """Run one process of the worker until it exits: its exit code (None: not started)."""
        worker.process = None
        worker.hung = False
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
        self._watchdog.expect(worker, START_TIMEOUT)
        status = StatusReader(read_fd, lambda stats: self._on_status(worker, stats))
        self._watchdog.listen(worker, status.drain)
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
        self._watchdog.forget(worker)
        await status.closed.wait()  # its last record is in
        self._retire(worker)
        return code

    def _on_status(self, worker: _Worker, stats: Stats) -> None:
        if not self._stopping.is_set():
            self._watchdog.expect(worker, self._worker_timeout)
        first = worker.stats is None
        worker.stats = stats
        if first:
            logger.info("%s accepting", worker.describe())
            if all(other.stats is not None for other in self._workers):
                self._ready.set()

    def _retire(self, worker: _Worker) -> None:
        """Keep an exited worker's totals, so that the sums never go back."""
        if worker.stats is not None:
            self._retired += dataclasses.replace(worker.stats, connections_active=0)
            worker.stats = None


def _signal(worker: _Worker, sig: int) -> None:
    if worker.process is not None and worker.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(sig)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"
