"""The server lifecycle: start, serve, observe, shut down gracefully.

The library never installs signal handlers and never creates or picks an
event loop: it runs on whichever loop is running when it is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from .config import FAULT_FIELDS, ConfigError, ServerConfig
from .core import (
    MAX_CONNECTIONS_ERROR,
    MAX_CONNECTIONS_PER_IP_ERROR,
    ChunkEchoProtocol,
    Clock,
    CloseReason,
    Connection,
    ConnectionTracker,
    EchoProtocol,
    LineEcho,
    LineEchoProtocol,
    Timeouts,
)
from .faults import FaultOutbox
from .serving import Observers, bind_listeners
from .sockets.accept import Listener, set_send_buffer
from .sockets.binding import Address, UnixSocketFile
from .sockets.limits import default_max_connections
from .stats import Stats, snapshot
from .tls import server_context

logger = logging.getLogger("aioecho")


class EchoServer:
    """An uppercase echo server on the running event loop.

    Use it as ``async with await start_server(...) as server:``, or call
    :meth:`start` and later :meth:`shutdown` yourself.

    It serves in the calling process: several worker processes are the job of
    :func:`aioecho.run_server`, which uses the two keywords below.
    ``sockets`` are listening sockets to serve instead of binding the
    config's addresses (a Unix socket file then stays theirs to remove);
    ``reuse_port`` binds with SO_REUSEPORT, so other processes can serve the
    same port. ``tls`` is a context already made from the config's
    ``tls_cert`` and ``tls_key`` (the command line makes it to check the
    files before anything starts), used instead of reading them again.
    ``clock`` replaces the loop's clock for the time limits
    (idle, line and write timeouts, the metrics request deadline), so that
    a test can drive them: advance
    it, then call :meth:`check_timeouts`.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        sockets: Sequence[socket.socket] | None = None,
        reuse_port: bool = False,
        tls: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        if self.config.workers > 1:
            raise ConfigError("workers > 1 needs run_server(): an EchoServer is one process")
        self._given_sockets = sockets
        self._reuse_port = reuse_port
        self.max_connections = self.config.max_connections or default_max_connections()
        self._connections = ConnectionTracker(
            self._connection_closed, clock=clock, memory_limit=self.config.max_client_memory
        )
        self._timeouts: Timeouts | None = None
        self._peers: dict[str, int] = {}  # open connections by peer address, if limited
        self._peer_of: dict[Connection, str] = {}
        self._listener: Listener | None = None
        self._admitting: set[asyncio.Task[None]] = set()
        self._observers = Observers(self.config, lambda: self.stats)
        self._unix_file: UnixSocketFile | None = None
        self._tls = tls
        self._shutdown_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting; when this returns, clients can connect.

        If any part fails (a busy port raises :class:`~aioecho.sockets.binding.BindError`
        naming the address, echo or metrics), what was already started is
        closed again before the error propagates.
        """
        if self._listener is not None:
            raise RuntimeError("server already started")
        config = self.config
        self._protocol_factory = self._make_protocol_factory()
        if self._tls is None and config.tls_cert is not None and config.tls_key is not None:
            self._tls = server_context(config.tls_cert, config.tls_key)
        # Everything that can fail comes before accepting, so undoing it is
        # closing sockets: no client has been let in yet.
        sockets = self._bind() if self._given_sockets is None else list(self._given_sockets)
        for sock in sockets:
            sock.setblocking(False)  # the accept loop drains each socket until it would block
        try:
            await self._observers.serve_metrics(clock=self._connections.clock)
        except BaseException:
            self._release(sockets)
            raise
        self._listener = Listener(sockets, self._admit, self._connections.counters)
        self._listener.start()
        self._timeouts = Timeouts.of(
            config.idle_timeout,
            config.write_timeout,
            config.line_timeout,
            always=bool(config.max_client_memory),
        )
        if self._timeouts is not None:
            self._connections.start_sweeping(self._timeouts)
        self._observers.log_stats()

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

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def check_timeouts(self) -> None:
        """Apply the time limits now, by the server's clock, instead of at the next sweep.

        The metrics endpoint's request deadline included.
        """
        if self._timeouts is not None:
            self._connections.sweep(self._timeouts)
        self._observers.check_deadlines()

    def set_faults(self, **faults: Any) -> None:
        """Change the faults (``delay``, ``reset``, ... as in :class:`ServerConfig`).

        Fields not given keep their value; give a fault its default (``""``,
        ``0``, ``None``) to turn it off. The change applies to the
        connections the server accepts after this call; a connection already
        accepted keeps the faults it was accepted with (none, if none were
        on) until it closes. A bad value raises :class:`ConfigError` and
        changes nothing.
        """
        unknown = sorted(set(faults) - set(FAULT_FIELDS))
        if unknown:
            known = ", ".join(FAULT_FIELDS)
            raise ConfigError(f"not a fault: {', '.join(unknown)} (faults are {known})")
        self.config = dataclasses.replace(self.config, **faults)
        if self._listener is not None:
            self._protocol_factory = self._make_protocol_factory()

    def clear_faults(self) -> None:
        """Turn every fault off, for the connections accepted from now on."""
        defaults = ServerConfig()
        self.set_faults(**{name: getattr(defaults, name) for name in FAULT_FIELDS})

    # -- observation ---------------------------------------------------------

    @property
    def addresses(self) -> list[Address]:
        """The bound ``(host, port)`` pairs: the real port after binding port 0."""
        if self._listener is None or self._shutdown_task is not None:
            return []
        return self._listener.addresses

    @property
    def unix_path(self) -> str | None:
        """The Unix socket path served, if any."""
        return self.config.unix if self.is_serving else None

    @property
    def metrics_addresses(self) -> list[Address]:
        """Where ``/metrics`` is served (empty without ``metrics_port``)."""
        if self._shutdown_task is not None:
            return []
        return self._observers.metrics_addresses

    @property
    def stats(self) -> Stats:
        """A snapshot of the server's counters."""
        return snapshot(self._connections.counters)

    @property
    def is_serving(self) -> bool:
        """Whether the server is accepting new connections."""
        return (
            self._listener is not None
            and self._shutdown_task is None
            and self._listener.is_accepting
        )

    # -- internals -----------------------------------------------------------

    def _bind(self) -> list[socket.socket]:
        sockets, self._unix_file = bind_listeners(self.config, reuse_port=self._reuse_port)
        return sockets

    def _release(self, sockets: list[socket.socket]) -> None:
        """Undo a start that failed before accepting."""
        if self._given_sockets is None:
            for sock in sockets:
                sock.close()
        if self._unix_file is not None:
            self._unix_file.remove()

    def _make_protocol_factory(self) -> Callable[[], EchoProtocol]:
        config = self.config
        if config.framing == "chunk":
            return functools.partial(
                ChunkEchoProtocol, self._connections, config.suffix_bytes, config.unicode
            )
        echo = LineEcho(config.suffix_bytes, config.max_line, config.unicode)
        faults = config.faults
        if not faults.active:
            return functools.partial(LineEchoProtocol, self._connections, echo)
        outboxes = FaultOutbox.factory(faults, self._connections.counters, self._connections.clock)
        return functools.partial(LineEchoProtocol, self._connections, echo, outboxes)

    def _admit(self, sock: socket.socket) -> None:
        """Take an accepted socket into service, or refuse it when the server is full."""
        if len(self._connections) >= self.max_connections:
            return self._refuse(sock, CloseReason.MAX_CONNECTIONS, MAX_CONNECTIONS_ERROR)
        peer = self._peer_address(sock)
        if peer is not None and self._peers.get(peer, 0) >= self.config.max_connections_per_ip:
            error = MAX_CONNECTIONS_PER_IP_ERROR
            return self._refuse(sock, CloseReason.MAX_CONNECTIONS_PER_IP, error)
        try:
            set_send_buffer(sock, self.config.sndbuf)
        except OSError as exc:  # the peer may be gone already: the transport will find out
            logger.debug("SO_SNDBUF not set: %r", exc)
        # Counted from now, not from connection_made: the transport is built
        # in a task, and accepts in between must see this connection.
        protocol = self._protocol_factory()
        if peer is not None:
            self._peers[peer] = self._peers.get(peer, 0) + 1
            self._peer_of[protocol] = peer
        self._connections.opened(protocol)
        task = asyncio.get_running_loop().create_task(self._connect(sock, protocol))
        self._admitting.add(task)
        task.add_done_callback(self._admitting.discard)

    async def _connect(self, sock: socket.socket, protocol: EchoProtocol) -> None:
        loop = asyncio.get_running_loop()
        handshake_timeout = self.config.tls_handshake_timeout if self._tls else None
        try:
            await loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=self._tls, ssl_handshake_timeout=handshake_timeout
            )
        except Exception as exc:
            # A failed TLS handshake, a peer gone before the transport existed.
            logger.debug("connection failed before it was made: %r", exc)
            sock.close()
            self._connections.closed(protocol)

    def _refuse(self, sock: socket.socket, reason: CloseReason, error: bytes) -> None:
        """Turn an accepted socket away with an error line, before any transport is built."""
        self._connections.counters.rejected[reason] += 1
        with contextlib.suppress(OSError):  # the peer may be gone already
            sock.send(error)
        sock.close()

    def _peer_address(self, sock: socket.socket) -> str | None:
        """The peer's IP address, if connections per address are limited (TCP only)."""
        if not self.config.max_connections_per_ip or sock.family == socket.AF_UNIX:
            return None
        try:
            address: str = sock.getpeername()[0]
        except OSError:  # gone already: the transport will find out
            return None
        return address

    def _connection_closed(self, connection: Connection) -> None:
        peer = self._peer_of.pop(connection, None)
        if peer is not None:
            left = self._peers[peer] - 1
            if left:
                self._peers[peer] = left
            else:
                del self._peers[peer]
        if self._listener is not None:
            self._listener.descriptor_freed()

    async def _shut_down(self, grace: float) -> None:
        if self._listener is not None:
            self._listener.close()
            if self._unix_file is not None:
                self._unix_file.remove()
        self._observers.close()
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
        await self._observers.wait_closed()
        self._stopped.set()


async def start_server(config: ServerConfig | None = None, **options: Any) -> EchoServer:
    """Start an :class:`EchoServer` that is accepting connections when this returns.

    Options are the fields of :class:`ServerConfig` (``host``, ``port``,
    ``framing``, ``suffix``, ``max_line``, ``max_connections``, ...), applied
    over ``config``.
    """
    server = EchoServer(dataclasses.replace(config or ServerConfig(), **options))
    await server.start()
    return server
