"""Prometheus metrics at ``/metrics``, read from the server's counters on scrape.

Nothing here runs per message: the collector turns a :class:`Stats` snapshot
into metric families only when Prometheus asks. The endpoint is a minimal
HTTP/1.0 responder on the server's own event loop, so it works the same on
asyncio and uvloop and needs no thread.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import cast

from .core import Counters
from .sockets.accept import Listener
from .sockets.binding import Address, BindError, bind_tcp
from .stats import Stats

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("metrics need prometheus-client: pip install 'aioecho[metrics]'") from exc

REQUEST_HEAD_LIMIT = 8192
REQUEST_TIMEOUT = 10.0

# Scrapers at once: Prometheus needs one, a person with curl another. More
# are refused (closed at once), so that however many connections reach this
# port, it holds at most this many descriptors, all within the reserve the
# echo service leaves free (RESERVED_DESCRIPTORS).
METRICS_MAX_CONNECTIONS = 8
METRICS_BACKLOG = 64


class StatsCollector(Collector):
    """Exposes a stats snapshot under Prometheus naming conventions."""

    def __init__(
        self, snapshot: Callable[[], Stats], restarts: Callable[[], Mapping[str, int]] | None = None
    ) -> None:
        self._snapshot = snapshot
        self._restarts = restarts

    def collect(self) -> Iterator[Metric]:
        stats = self._snapshot()
        yield GaugeMetricFamily(
            "aioecho_connections_active", "Open client connections.", stats.connections_active
        )
        yield CounterMetricFamily(
            "aioecho_connections_accepted",
            "Client connections admitted.",
            stats.connections_accepted,
        )
        rejected = CounterMetricFamily(
            "aioecho_connections_rejected",
            "Client connections refused or closed by the server, by reason.",
            labels=["reason"],
        )
        for reason, count in stats.connections_rejected.items():
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            "aioecho_accept_errors", "Failed accept() calls.", stats.accept_errors
        )
        yield CounterMetricFamily(
            "aioecho_received_bytes", "Bytes received from clients.", stats.bytes_received
        )
        yield CounterMetricFamily("aioecho_sent_bytes", "Bytes sent to clients.", stats.bytes_sent)
        yield CounterMetricFamily(
            "aioecho_messages_answered", "Lines (or chunks) answered.", stats.messages_answered
        )
        yield GaugeMetricFamily(
            "aioecho_client_buffered_bytes",
            "Bytes held for clients: input not yet answered, replies not yet sent.",
            stats.bytes_buffered,
        )
        faults = CounterMetricFamily(
            "aioecho_faults", "Faults injected on purpose, by fault.", labels=["fault"]
        )
        for fault, count in stats.faults.items():
            faults.add_metric([fault], count)
        yield faults
        if self._restarts is not None:
            restarts = CounterMetricFamily(
                "aioecho_worker_restarts",
                "Worker processes restarted, by reason: exited, or hung (killed).",
                labels=["reason"],
            )
            for reason, count in self._restarts().items():
                restarts.add_metric([reason], count)
            yield restarts


def registry_for(
    snapshot: Callable[[], Stats], restarts: Callable[[], Mapping[str, int]] | None = None
) -> CollectorRegistry:
    """A registry holding only the server's metrics (and the workers' restarts, if any)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StatsCollector(snapshot, restarts))
    return registry


async def start_metrics(
    snapshot: Callable[[], Stats],
    host: str,
    port: int,
    restarts: Callable[[], Mapping[str, int]] | None = None,
) -> MetricsServer:
    """Serve ``GET /metrics`` from ``snapshot()`` on ``host:port``; close the server to stop.

    ``restarts``: worker restarts by reason, for a supervisor's metrics.
    A port that cannot be used raises :class:`BindError` naming the metrics port.
    """
    try:
        sockets = bind_tcp([host], port, METRICS_BACKLOG)
    except BindError as exc:
        raise exc.serving("serve metrics") from exc
    server = MetricsServer(sockets, registry_for(snapshot, restarts))
    server.start()
    return server


class MetricsServer:
    """The ``/metrics`` endpoint: at most METRICS_MAX_CONNECTIONS connections at once.

    It accepts with the echo service's accept loop, which survives running
    out of descriptors with one log line instead of a traceback per accept.
    """

    def __init__(self, sockets: list[socket.socket], registry: CollectorRegistry) -> None:
        self._registry = registry
        self._listener = Listener(sockets, self._admit, Counters(), log_prefix="metrics: ")
        self._held = 0
        """Connections admitted and not yet closed, those still being set up included."""
        self._scrapes: set[_Scrape] = set()
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def addresses(self) -> list[Address]:
        """Where ``/metrics`` is served."""
        return self._listener.addresses

    def start(self) -> None:
        self._listener.start()

    def close(self) -> None:
        """Stop accepting and drop every scrape in progress."""
        self._listener.close()
        for task in self._connecting:
            task.cancel()
        for scrape in list(self._scrapes):
            scrape.abort()

    def _admit(self, sock: socket.socket) -> None:
        if self._held >= METRICS_MAX_CONNECTIONS:
            sock.close()  # refused: the scraper sees the connection closed
            return
        self._held += 1
        task = asyncio.get_running_loop().create_task(self._connect(sock))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        scrape = _Scrape(self._registry, self._closed)
        self._scrapes.add(scrape)
        try:
            await loop.connect_accepted_socket(lambda: scrape, sock)
        except BaseException:
            sock.close()  # the scraper left before the transport existed
            self._closed(scrape)
            raise

    def _closed(self, scrape: _Scrape) -> None:
        if scrape in self._scrapes:
            self._scrapes.discard(scrape)
            self._held -= 1


class _Scrape(asyncio.Protocol):
    """One HTTP/1.0 request: read its head, answer, close."""

    def __init__(self, registry: CollectorRegistry, on_closed: Callable[[_Scrape], None]) -> None:
        self._registry = registry
        self._on_closed = on_closed
        self._head = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, self.abort)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._head += data
        if b"\r\n\r\n" in self._head:
            self._transport.write(_response(self._head, self._registry))
            self._transport.close()
        elif len(self._head) > REQUEST_HEAD_LIMIT:
            self._transport.abort()

    def eof_received(self) -> bool:
        return False  # a request cut short: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._on_closed(self)


def _response(head: bytes, registry: CollectorRegistry) -> bytes:
    method, _, rest = head.partition(b" ")
    path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
    if method != b"GET" or path != b"/metrics":
        return b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    body = generate_latest(registry)
    return (
        b"HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (CONTENT_TYPE_LATEST.encode(), len(body))
        + body
    )
