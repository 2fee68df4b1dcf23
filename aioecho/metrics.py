"""Prometheus metrics at ``/metrics``, read from the server's counters on scrape.

Nothing here runs per message: the collector turns a :class:`Stats` snapshot
into metric families only when Prometheus asks. The endpoint is a minimal
HTTP/1.0 responder on the server's own event loop, so it works the same on
asyncio and uvloop and needs no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from .stats import Stats

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("metrics need prometheus-client: pip install 'aioecho[metrics]'") from exc

REQUEST_HEAD_LIMIT = 8192
REQUEST_TIMEOUT = 10.0


class StatsCollector(Collector):
    """Exposes a stats snapshot under Prometheus naming conventions."""

    def __init__(self, snapshot: Callable[[], Stats]) -> None:
        self._snapshot = snapshot

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


def registry_for(snapshot: Callable[[], Stats]) -> CollectorRegistry:
    """A registry holding only the server's metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StatsCollector(snapshot))
    return registry


async def start_metrics(snapshot: Callable[[], Stats], host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` from ``snapshot()`` on ``host:port``; close the server to stop."""
    registry = registry_for(snapshot)

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            writer.write(_response(head, registry))
            await writer.drain()
        writer.close()

    return await asyncio.start_server(respond, host, port, limit=REQUEST_HEAD_LIMIT)


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
