"""One :class:`~aioecho.EchoServer` in this process, as a service the lifecycle runs."""

from __future__ import annotations

from ..server import EchoServer
from .allocator import keep_large_buffers_mapped
from .readiness import Readiness


class ServerService:
    """Serves in the calling process; the command line's ``--workers 1`` and each worker."""

    stopping = "shutting down"

    def __init__(self, server: EchoServer, loop_name: str) -> None:
        self.server = server
        self.grace = server.config.shutdown_timeout
        self._loop_name = loop_name

    async def start(self) -> None:
        # This process serves and nothing else: its allocator may be tuned to.
        keep_large_buffers_mapped()
        await self.server.start()  # undoes itself if any part fails

    def readiness(self) -> Readiness:
        server = self.server
        return Readiness.of(
            server.config, server.addresses, server.metrics_addresses, self._loop_name
        )

    async def stop(self) -> None:
        await self.server.shutdown()

    def force(self) -> None:
        self.server.abort()
