"""Prometheus metrics at ``/metrics``, read from the server's counters on scrape.

Nothing here runs per message: the collector turns a :class:`Stats` snapshot
into metric families only when Prometheus asks. The endpoint is a minimal
HTTP/1.0 responder on the server's own event loop, so it works the same on
asyncio and uvloop and needs no thread.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import cast

from .core import Counters
from .extras import import_extra
from .sockets.accept import Listener
from .sockets.binding import Address, BindError, bind_tcp
from .stats import Stats

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError:
    import_extra("prometheus_client", "metrics", "--metrics-port")  # names the extra to install
    raise

REQUEST_HEAD_LIMIT = 8192
# The whole request head must arrive within this many seconds of the accept.
# Prometheus and curl send theirs at once; a connection that sends nothing
# holds a slot only this long.
REQUEST_DEADLINE = 2.0
# How often held connections are checked against the deadline (while any are).
DEADLINE_SWEEP = REQUEST_DEADLINE / 8

# Scrapers at once: Prometheus needs one, a person with curl another. More
# are refused (closed at once), so that however many connections reach this
# port, it holds at most this many descriptors, all within the reserve the
# echo service leaves free (RESERVED_DESCRIPTORS).
METRICS_MAX_CONNECTIONS = 8
# Slots one peer address may hold: half, rounded up. However many
# connections one address opens, the other half stays free for the others
# (Prometheus scrapes from its own address), and one address alone still
# gets more than a scraper, a retry and a person with curl need.
METRICS_MAX_PER_ADDRESS = math.ceil(METRICS_MAX_CONNECTIONS / 2)
METRICS_BACKLOG = 64

# Why a metrics connection was refused or cut off, as counted on /metrics.
REFUSED_FULL = "max_connections"
REFUSED_ADDRESS = "max_connections_per_ip"
REFUSED_DEADLINE = "request_timeout"
REFUSED_REASONS = (REFUSED_FULL, REFUSED_ADDRESS, REFUSED_DEADLINE)


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


class RefusedCollector(Collector):
    """The metrics endpoint's own refusals, by reason."""

    def __init__(self, refused: Mapping[str, int]) -> None:
        self._refused = refused

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "aioecho_metrics_refused",
            "Connections to /metrics refused or cut off, by reason: every slot held, "
            "the address's share held, or no request within the deadline.",
            labels=["reason"],
        )
        for reason in REFUSED_REASONS:
            family.add_metric([reason], self._refused[reason])
        yield family


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
    clock: Callable[[], float] = time.monotonic,
) -> MetricsServer:
    """Serve ``GET /metrics`` from ``snapshot()`` on ``host:port``; close the server to stop.

    ``restarts``: worker restarts by reason, for a supervisor's metrics.
    ``clock``: what the request deadline is timed by (a test's, to drive it).
    A port that cannot be used raises :class:`BindError` naming the metrics port.
    """
    try:
        sockets = bind_tcp([host], port, METRICS_BACKLOG)
    except BindError as exc:
        raise exc.serving("serve metrics") from exc
    server = MetricsServer(sockets, registry_for(snapshot, restarts), clock)
    server.start()
    return server


class MetricsServer:
    """The ``/metrics`` endpoint: at most METRICS_MAX_CONNECTIONS connections at once.

    One peer address holds at most METRICS_MAX_PER_ADDRESS of them, and a
    connection whose request has not arrived REQUEST_DEADLINE seconds after
    its accept is closed; each refusal is counted on /metrics. It accepts
    with the echo service's accept loop, which survives running out of
    descriptors with one log line instead of a traceback per accept.
    """

    def __init__(
        self,
        sockets: list[socket.socket],
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._listener = Listener(sockets, self._admit, Counters(), log_prefix="metrics: ")
        self._scrapes: set[_Scrape] = set()
        """Connections admitted and not yet closed, those still being set up included."""
        self._by_address: Counter[str] = Counter()
        self._connecting: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self.refused: Counter[str] = Counter(dict.fromkeys(REFUSED_REASONS, 0))
        """Connections refused or cut off, by reason (also on /metrics)."""
        registry.register(RefusedCollector(self.refused))

    @property
    def held(self) -> int:
        """Connections held now."""
        return len(self._scrapes)

    @property
    def addresses(self) -> list[Address]:
        """Where ``/metrics`` is served."""
        return self._listener.addresses

    def start(self) -> None:
        self._listener.start()

    def close(self) -> None:
        """Stop accepting and drop every scrape in progress."""
        self._listener.close()
        if self._sweep is not None:
            self._sweep.cancel()
        for task in self._connecting:
            task.cancel()
        for scrape in list(self._scrapes):
            scrape.abort()

    def check_deadlines(self) -> None:
        """Close every connection whose request is overdue by the clock now."""
        now = self._clock()
        for scrape in list(self._scrapes):
            if not scrape.answered and now - scrape.started >= REQUEST_DEADLINE:
                self.refused[REFUSED_DEADLINE] += 1
                scrape.abort()

    def _admit(self, sock: socket.socket) -> None:
        try:
            address = str(sock.getpeername()[0])
        except OSError:
            sock.close()  # the scraper has already left
            return
        reason = self._refusal(address)
        if reason is not None:
            self.refused[reason] += 1
            sock.close()  # refused: the scraper sees the connection closed
            return
        scrape = _Scrape(self._registry, address, self._clock(), self._closed)
        self._scrapes.add(scrape)
        self._by_address[address] += 1
        self._keep_sweeping()
        task = asyncio.get_running_loop().create_task(self._connect(sock, scrape))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    def _refusal(self, address: str) -> str | None:
        """Why a connection from ``address`` cannot have a slot now (None: it can)."""
        if len(self._scrapes) >= METRICS_MAX_CONNECTIONS:
            return REFUSED_FULL
        if self._by_address[address] >= METRICS_MAX_PER_ADDRESS:
            return REFUSED_ADDRESS
        return None

    async def _connect(self, sock: socket.socket, scrape: _Scrape) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: scrape, sock)
        except BaseException:
            sock.close()  # the scraper left before the transport existed
            self._closed(scrape)
            raise

    def _closed(self, scrape: _Scrape) -> None:
        if scrape in self._scrapes:
            self._scrapes.discard(scrape)
            self._by_address[scrape.address] -= 1
            if not self._by_address[scrape.address]:
                del self._by_address[scrape.address]

    def _keep_sweeping(self) -> None:
        """Check the deadlines every DEADLINE_SWEEP while any connection is held."""
        if self._sweep is None and self._scrapes:
            self._sweep = asyncio.get_running_loop().call_later(DEADLINE_SWEEP, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self.check_deadlines()
        self._keep_sweeping()


class _Scrape(asyncio.Protocol):
    """One HTTP/1.0 request: read its head, answer, close."""

    def __init__(
        self,
        registry: CollectorRegistry,
        address: str,
        started: float,
        on_closed: Callable[[_Scrape], None],
    ) -> None:
        self._registry = registry
        self.address = address
        self.started = started
        """When it was accepted, by the server's clock."""
        self.answered = False
        self._on_closed = on_closed
        self._head = b""
        self._transport: asyncio.Transport | None = None
        self._aborted = False

    def abort(self) -> None:
        self._aborted = True  # a transport still being made is aborted once made
        if self._transport is not None:
            self._transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self._aborted:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._head += data
        if b"\r\n\r\n" in self._head:
            self.answered = True
            self._transport.write(_response(self._head, self._registry))
            self._transport.close()
        elif len(self._head) > REQUEST_HEAD_LIMIT:
            self._transport.abort()

    def eof_received(self) -> bool:
        return False  # a request cut short: close

    def connection_lost(self, exc: Exception | None) -> None:
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
