"""The worker processes of one service: started, watched, restarted, stopped,
their counters summed.

Each worker is ``python -P -m aioecho.process.worker``, started as every
child of the package is (:mod:`aioecho.process.spawn`), with its
:class:`~aioecho.process.spec.WorkerSpec` on stdin and a status pipe back
(:mod:`aioecho.process.status`); the watchdog kills one that stops
reporting, and a worker that exits is restarted after a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import ServerConfig
from ..core import Counters
from ..loops import LoopName
from ..stats import Stats, snapshot
from . import spawn
from .backoff import RestartBackoff
from .lifecycle import ServiceFailed
from .spec import WorkerSpec
from .status import StatusReader
from .watchdog import Watchdog

logger = logging.getLogger("aioecho")

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

WORKER_MODULE = "aioecho.process.worker"


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
            worker.process = await spawn.start_async(
                WORKER_MODULE,
                pass_fds=(write_fd, *self._listen_fds),
                # Its own session: a terminal's Ctrl-C reaches the parent only,
                # which forwards it once (twice would force the stop).
                new_session=True,
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
        spawn.hand_over(worker.process.stdin, spec)
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
