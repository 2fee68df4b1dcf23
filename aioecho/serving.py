"""What a serving process sets up around its connections, written once for both kinds.

The single-process :class:`~aioecho.EchoServer` and the supervisor of
workers (:mod:`aioecho.process.supervisor`) bind the sockets a config names
and run the same observers (the ``/metrics`` endpoint and the periodic
stats lines), each over its own snapshot of the counters.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .config import ServerConfig
from .sockets.binding import Address, UnixSocketFile, bind_tcp, bind_unix
from .stats import Stats, log_stats_every

if TYPE_CHECKING:
    from .metrics import MetricsServer


def bind_listeners(
    config: ServerConfig, *, reuse_port: bool = False, listen: bool = True
) -> tuple[list[socket.socket], UnixSocketFile | None]:
    """The sockets ``config`` serves on, and the Unix socket's file to remove at the end.

    A busy address raises :class:`~aioecho.sockets.binding.BindError`
    naming it. ``listen=False`` binds TCP addresses without listening (a
    Unix socket always listens).
    """
    if config.unix is not None:
        sock, unix_file = bind_unix(config.unix, config.backlog, config.unix_mode)
        return [sock], unix_file
    return bind_tcp(config.hosts, config.port, config.backlog, reuse_port, listen=listen), None


class Observers:
    """The ``/metrics`` endpoint and the stats lines a config asks for, over ``stats()``."""

    def __init__(self, config: ServerConfig, stats: Callable[[], Stats]) -> None:
        self._config = config
        self._stats = stats
        self._metrics: MetricsServer | None = None
        self._lines: asyncio.Task[None] | None = None

    async def serve_metrics(
        self,
        restarts: Callable[[], Mapping[str, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Serve ``/metrics`` if the config names a port; a busy one raises BindError."""
        config = self._config
        if config.metrics_port is not None:
            from .metrics import start_metrics  # the metrics extra, only where asked for

            self._metrics = await start_metrics(
                self._stats, config.hosts[0], config.metrics_port, restarts, clock
            )

    def log_stats(self) -> None:
        """Log a stats line every ``stats_interval`` seconds, if the config asks."""
        if self._config.stats_interval:
            lines = log_stats_every(self._config.stats_interval, self._stats)
            self._lines = asyncio.create_task(lines)

    @property
    def metrics_addresses(self) -> list[Address]:
        return self._metrics.addresses if self._metrics is not None else []

    def check_deadlines(self) -> None:
        """Apply the metrics endpoint's request deadline now (a test's clock moved)."""
        if self._metrics is not None:
            self._metrics.check_deadlines()

    def close(self) -> None:
        """Stop both; safe at any point of a start."""
        if self._lines is not None:
            self._lines.cancel()
        if self._metrics is not None:
            self._metrics.close()

    async def wait_closed(self) -> None:
        """Wait for the stats lines to end after :meth:`close`."""
        if self._lines is not None:
            await asyncio.gather(self._lines, return_exceptions=True)
