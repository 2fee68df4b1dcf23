"""Several worker processes on one port, under a supervising parent.

:func:`aioecho.run_server` comes here when ``workers`` is above 1. The
parent binds first, so that a busy address fails once, in one line, and port
0 resolves to one port for every worker. It then starts the workers (the
pool, :mod:`aioecho.process.pool`, restarts one that exits after a back-off,
:mod:`aioecho.process.backoff`, and kills one that stops reporting, hung or
stopped by SIGSTOP, :mod:`aioecho.process.watchdog`), serves the metrics and
stats lines summed over all of them, and stops them all gracefully when the
lifecycle says so.
"""

from __future__ import annotations

import logging
import socket
import sys

from ..config import ServerConfig
from ..core import Counters
from ..loops import LoopName
from ..serving import Observers, bind_listeners
from ..sockets.binding import UnixSocketFile
from ..stats import Stats, snapshot
from .pool import WorkerPool
from .readiness import Readiness

logger = logging.getLogger("aioecho")

# Linux spreads the connections of a port over its SO_REUSEPORT listeners;
# BSD and macOS accept the option but give every connection to one of them,
# so there the workers share one listening socket instead.
REUSE_PORT_BALANCES = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


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
        self._observers = Observers(config, self._stats)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    def readiness(self) -> Readiness:
        addresses = [s.getsockname()[:2] for s in self._sockets if s.family != socket.AF_UNIX]
        metrics = self._observers.metrics_addresses
        return Readiness.of(self.config, addresses, metrics, self._loop_name)

    async def stop(self) -> None:
        await self._release()

    def force(self) -> None:
        if self._pool is not None:
            self._pool.force_stop()

    async def _start(self) -> None:
        inherited = self._bind()
        await self._observers.serve_metrics(self._restarts)
        self._pool = WorkerPool(self.config, self._loop_name, self._sockets, inherited)
        self._pool.start()
        await self._pool.started()
        self._observers.log_stats()

    def _bind(self) -> bool:
        """Bind the service's sockets; whether the workers serve them (else they bind their own)."""
        # Unix sockets have no SO_REUSEPORT: one socket, inherited by every worker.
        # Elsewhere, where SO_REUSEPORT balances, the parent's TCP sockets are bound
        # without SO_REUSEPORT and not listening: the bind fails on a port that
        # some server listens on, and the socket holds the port (port 0 included)
        # across worker restarts without taking connections. The workers'
        # SO_REUSEPORT listeners may share its port as it never listens.
        listen = self.config.unix is not None or not REUSE_PORT_BALANCES
        self._sockets, self._unix_file = bind_listeners(self.config, listen=listen)
        return listen

    async def _release(self) -> None:
        """Stop whatever was started, in reverse order; safe to call at any point."""
        self._observers.close()
        if self._pool is not None:
            await self._pool.stop()
        for sock in self._sockets:
            sock.close()
        if self._unix_file is not None:
            self._unix_file.remove()  # the workers leave it to the parent

    def _stats(self) -> Stats:
        return self._pool.stats() if self._pool is not None else snapshot(Counters())

    def _restarts(self) -> dict[str, int]:
        return dict(self._pool.restarts) if self._pool is not None else {}
