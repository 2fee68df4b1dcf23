"""The server lifecycle: start, serve, observe, shut down gracefully.

The library never installs signal handlers and never creates or picks an
event loop: it runs on whichever loop is running when it is started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .config import ServerConfig
from .connections import ConnectionTracker
from .framing import LineEcho
from .protocol import ChunkEchoProtocol, EchoProtocol, LineEchoProtocol
from .stats import Stats

logger = logging.getLogger("aioecho")

Address = tuple[str, int]


class EchoServer:
    """An uppercase echo server on the running event loop.

    Use it as ``async with await start_server(...) as server:``, or call
    :meth:`start` and later :meth:`shutdown` yourself.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self._connections = ConnectionTracker()
        self._listener: asyncio.Server | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting; when this returns, clients can connect."""
        if self._listener is not None:
            raise RuntimeError("server already started")
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            self._protocol_factory(),
            self.config.host,
            self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
        )

    async def serve_forever(self) -> None:
        """Serve until shut down; cancelling this call shuts down gracefully."""
        if self._listener is None:
            await self.start()
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            await self.shutdown()
            raise

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, flush the replies already owed, close everything.

        Connections still open after ``timeout`` seconds (default: the
        config's ``shutdown_timeout``) are aborted. Safe to call many times;
        every call waits for the same shutdown.
        """
        if self._shutdown_task is None:
            grace = self.config.shutdown_timeout if timeout is None else timeout
            self._shutdown_task = asyncio.ensure_future(self._shut_down(grace))
        await asyncio.shield(self._shutdown_task)

    def abort(self) -> None:
        """Close every connection now, dropping replies not yet sent."""
        self._connections.abort_all()

    async def __aenter__(self) -> EchoServer:
        if self._listener is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # -- observation ---------------------------------------------------------

    @property
    def addresses(self) -> list[Address]:
        """The bound ``(host, port)`` pairs: the real port after binding port 0."""
        if self._listener is None:
            return []
        return [sock.getsockname()[:2] for sock in self._listener.sockets]

    @property
    def stats(self) -> Stats:
        """A snapshot of the server's counters."""
        return self._connections.counters.snapshot()

    @property
    def is_serving(self) -> bool:
        """Whether the server is accepting new connections."""
        return self._listener is not None and self._listener.is_serving()

    # -- internals -----------------------------------------------------------

    def _protocol_factory(self) -> Callable[[], EchoProtocol]:
        config = self.config
        if config.framing == "chunk":
            return functools.partial(ChunkEchoProtocol, self._connections, config.suffix_bytes)
        echo = LineEcho(config.suffix_bytes, config.max_line)
        return functools.partial(LineEchoProtocol, self._connections, echo)

    async def _shut_down(self, grace: float) -> None:
        if self._listener is not None:
            self._listener.close()
        self._connections.close_all_gracefully()
        try:
            async with asyncio.timeout(grace):
                await self._connections.wait_none_open()
        except TimeoutError:
            logger.warning(
                "%d connection(s) still busy after %.1f s: closing them",
                len(self._connections),
                grace,
            )
            self.abort()
            await self._connections.wait_none_open()
        if self._listener is not None:
            await self._listener.wait_closed()
        self._stopped.set()


async def start_server(config: ServerConfig | None = None, **options: Any) -> EchoServer:
    """Start an :class:`EchoServer` that is accepting connections when this returns.

    Options are the fields of :class:`ServerConfig` (``host``, ``port``,
    ``framing``, ``suffix``, ``max_line``, ...), applied over ``config``.
    """
    server = EchoServer(dataclasses.replace(config or ServerConfig(), **options))
    await server.start()
    return server
