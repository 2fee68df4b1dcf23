"""Stats, periodic stats logging and Prometheus metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import aioecho
from aioecho import EchoServer
from aioecho.metrics import (
    METRICS_MAX_CONNECTIONS,
    METRICS_MAX_PER_ADDRESS,
    REFUSED_ADDRESS,
    REFUSED_DEADLINE,
    REFUSED_FULL,
    REQUEST_DEADLINE,
    MetricsServer,
    start_metrics,
)
from aioecho.pytest_plugin import EchoClock

from .support import (
    aioecho_command,
    log_line,
    read_to_end,
    serve_in_subprocess,
    until,
)

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Loopback is all of 127/8: connections from these addresses are other peers.
SCRAPER, HOSTILE, OTHER_HOSTILE = "127.0.0.1", "127.0.0.2", "127.0.0.3"
REFUSED = "aioecho_metrics_refused_total"


async def http_get(
    address: tuple[str, int], path: str, source: str = SCRAPER
) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection(*address, local_addr=(source, 0))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


@pytest.mark.echo_server(metrics_port=0, max_line=4)
async def test_metrics_follow_the_traffic(echo_server: EchoServer) -> None:
    metrics_address = echo_server.metrics_addresses[0]
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        assert await client.request("abc") == b"ABC_SB"
        status, body = await http_get(metrics_address, "/metrics")
        assert status == b"HTTP/1.0 200 OK"
        values = samples(body)
        assert values[("aioecho_connections_active", ())] == 1
        assert values[("aioecho_connections_accepted_total", ())] == 1
        assert values[("aioecho_received_bytes_total", ())] == 4
        assert values[("aioecho_sent_bytes_total", ())] == 7
        assert values[("aioecho_messages_answered_total", ())] == 1
        assert values[("aioecho_client_buffered_bytes", ())] == 0
        await client.send(b"ab")  # an unterminated line, held
        await until(lambda: echo_server.stats.bytes_received == 6)
        values = samples((await http_get(metrics_address, "/metrics"))[1])
        assert values[("aioecho_client_buffered_bytes", ())] == 2
        await client.send(b"\n")
        assert await client.read_reply() == b"AB_SB\n"
        with pytest.raises(aioecho.ServerError):
            await client.request("too long")
    values = samples((await http_get(metrics_address, "/metrics"))[1])
    rejected = "aioecho_connections_rejected_total"
    assert values[(rejected, (("reason", "line_too_long"),))] == 1
    assert values[(rejected, (("reason", "max_connections"),))] == 0


@pytest.mark.echo_server(metrics_port=0)
async def test_metrics_endpoint_answers_404_elsewhere(echo_server: EchoServer) -> None:
    status, body = await http_get(echo_server.metrics_addresses[0], "/other")
    assert status == b"HTTP/1.0 404 Not Found"
    assert body == b""


async def test_stats_summary_is_one_line(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        await client.request("x")
    summary = echo_server.stats.summary()
    assert "\n" not in summary
    assert "accepted=1" in summary
    assert "answered=1" in summary


def test_stats_interval_logs_a_summary_line() -> None:
    with serve_in_subprocess("--stats-interval", "0.1") as server:
        assert server.process.stderr is not None
        for line in server.process.stderr:
            if b"stats: active=0 accepted=0" in line:
                break
        else:
            raise AssertionError("no stats line before the server exited")
        server.process.terminate()
        assert server.process.wait(timeout=20) == 0


def test_metrics_port_is_served_from_the_command_line() -> None:
    with serve_in_subprocess("--metrics-port", "0") as server:
        (address,) = server.ready.metrics
        line = log_line(server.process, b"metrics on http://")
        assert f"metrics on http://127.0.0.1:{address[1]}/metrics".encode() in line
        server.process.terminate()
        assert server.process.wait(timeout=20) == 0


def test_metrics_without_prometheus_client_exits_2(tmp_path: Path) -> None:
    package = tmp_path / "prometheus_client"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = subprocess.run(
        aioecho_command("--metrics-port", "9999"),
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        b"aioecho serve: error: --metrics-port needs the metrics extra "
        b"(prometheus_client is not installed): pip install 'aioecho[metrics]'"
    ]


def test_importing_aioecho_does_not_import_prometheus() -> None:
    code = "import sys, aioecho; print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert result.stdout == b"False\n"


# -- the metrics endpoint under a hostile client -----------------------------------


@pytest.fixture
async def metrics(echo_server: EchoServer, clock: EchoClock) -> AsyncIterator[MetricsServer]:
    """A metrics endpoint for ``server``'s stats whose request deadline ``clock`` drives."""
    endpoint = await start_metrics(lambda: echo_server.stats, "127.0.0.1", 0, clock=clock)
    yield endpoint
    endpoint.close()


@pytest.fixture
def clock() -> EchoClock:
    return EchoClock()


async def hold(metrics: MetricsServer, count: int, source: str) -> list[Connection]:
    """``count`` silent connections from ``source``, each admitted or refused before it returns."""

    def settled() -> int:
        return metrics.held + sum(metrics.refused.values())

    connections = []
    before = settled()
    for number in range(1, count + 1):
        connections.append(
            await asyncio.open_connection(*metrics.addresses[0], local_addr=(source, 0))
        )
        await until(lambda: settled() == before + number)  # noqa: B023  (awaited here)
    return connections


def refused(body: bytes, reason: str) -> float:
    return samples(body)[(REFUSED, (("reason", reason),))]


async def test_one_address_holds_half_the_metrics_slots_and_scrapes_go_on(
    metrics: MetricsServer,
) -> None:
    hostile = await hold(metrics, METRICS_MAX_CONNECTIONS, HOSTILE)
    assert metrics.held == METRICS_MAX_PER_ADDRESS
    extra = METRICS_MAX_CONNECTIONS - METRICS_MAX_PER_ADDRESS
    for reader, _ in hostile[METRICS_MAX_PER_ADDRESS:]:
        assert await read_to_end(reader) == b""  # refused: closed without a word
    # Every slot the hostile address could not take serves another address.
    scrapes = [http_get(metrics.addresses[0], "/metrics") for _ in range(extra)]
    for status, body in await asyncio.gather(*scrapes):
        assert status == b"HTTP/1.0 200 OK"
        assert refused(body, REFUSED_ADDRESS) == extra
    for _, writer in hostile:
        writer.close()


async def test_a_full_endpoint_refuses_and_counts(metrics: MetricsServer) -> None:
    hostile = [
        *await hold(metrics, METRICS_MAX_PER_ADDRESS, HOSTILE),
        *await hold(metrics, METRICS_MAX_CONNECTIONS - METRICS_MAX_PER_ADDRESS, OTHER_HOSTILE),
    ]
    assert metrics.held == METRICS_MAX_CONNECTIONS
    assert await http_get(metrics.addresses[0], "/metrics") == (b"", b"")  # closed at once
    for _, writer in hostile:
        writer.close()
    await until(lambda: metrics.held == 0)
    status, body = await http_get(metrics.addresses[0], "/metrics")
    assert status == b"HTTP/1.0 200 OK"
    assert refused(body, REFUSED_FULL) == 1
    assert refused(body, REFUSED_ADDRESS) == 0


async def test_a_silent_metrics_connection_is_closed_at_the_deadline(
    metrics: MetricsServer, clock: EchoClock
) -> None:
    (early_reader, early_writer), (late_reader, _) = await hold(metrics, 2, HOSTILE)
    clock.advance(REQUEST_DEADLINE / 2)
    metrics.check_deadlines()
    early_writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")  # in time: answered
    assert (await read_to_end(early_reader)).startswith(b"HTTP/1.0 200 OK\r\n")
    clock.advance(REQUEST_DEADLINE / 2)
    metrics.check_deadlines()
    assert await read_to_end(late_reader) == b""
    await until(lambda: metrics.held == 0)
    _, body = await http_get(metrics.addresses[0], "/metrics")
    assert refused(body, REFUSED_DEADLINE) == 1


async def test_the_server_clock_drives_the_metrics_deadline() -> None:
    clock = EchoClock()
    config = aioecho.ServerConfig(host="127.0.0.1", port=0, metrics_port=0)
    async with EchoServer(config, clock=clock) as server:
        reader, _ = await asyncio.open_connection(*server.metrics_addresses[0])
        _, body = await http_get(server.metrics_addresses[0], "/metrics")
        assert refused(body, REFUSED_DEADLINE) == 0  # the silent one is still held
        clock.advance(REQUEST_DEADLINE)
        server.check_timeouts()
        assert await read_to_end(reader) == b""
