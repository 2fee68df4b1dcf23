"""Faults inside the server's limits: held memory at its cost, fair turns, pacing, refusals.

Over real sockets, on both loops; where time is the subject, the server runs
on a :class:`EchoClock`.
"""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from aioecho import CloseReason, EchoServer, ServerConfig
from aioecho.core import WRITE_HIGH_WATER
from aioecho.faults.outbox import LINES_PER_TURN
from aioecho.pytest_plugin import EchoClock

from .support import read_to_end, until

if TYPE_CHECKING:
    from aioecho.pytest_plugin import EchoServerFactory

EMPTY_LINES = 20_000  # one read, one slice: their replies reach the outbox at once


@pytest.fixture
def clock() -> EchoClock:
    return EchoClock()


@pytest.fixture
def raw_client() -> Iterator[socket.socket]:
    """A plain non-blocking socket: it allocates nothing per reply in this process."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    yield sock
    sock.close()


async def send(sock: socket.socket, server: EchoServer, data: bytes) -> None:
    """Connect ``sock`` to ``server``, send ``data`` and wait until the server has read it."""
    sock.connect(server.addresses[0])
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_sendall(sock, data)
    await until(lambda: server.stats.bytes_received == len(data))


@pytest.mark.parametrize("fault", [{"delay": "5m"}, {"jitter": "5m"}, {"delay": "5m:50"}])
async def test_held_replies_cost_what_the_memory_budget_counts(
    echo_server_factory: EchoServerFactory, raw_client: socket.socket, fault: dict[str, str]
) -> None:
    server = await echo_server_factory(**fault)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await send(raw_client, server, b"\n" * EMPTY_LINES)
        await until(lambda: server.stats.messages_answered == EMPTY_LINES)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = server.stats.bytes_buffered
    assert counted >= len(b"_SB\n") * EMPTY_LINES // 2  # half of them at least, delayed
    # Everything this process allocated meanwhile, the replies held among it.
    assert grown <= 1.5 * counted
    server.abort()  # not five minutes of replies to wait for


@pytest.mark.echo_server(jitter="5m")
async def test_a_loop_turn_decides_a_bounded_number_of_lines(
    echo_server: EchoServer, raw_client: socket.socket
) -> None:
    raw_client.connect(echo_server.addresses[0])
    raw_client.setblocking(False)
    await asyncio.get_running_loop().sock_sendall(raw_client, b"\n" * EMPTY_LINES)
    decided, steps = echo_server.stats.messages_answered, []
    while decided < EMPTY_LINES:
        await asyncio.sleep(0)  # one turn of the loop
        now = echo_server.stats.messages_answered
        steps.append(now - decided)
        decided = now
    assert max(steps) <= LINES_PER_TURN
    assert len([step for step in steps if step]) >= EMPTY_LINES // LINES_PER_TURN - 2
    echo_server.abort()


@pytest.fixture
async def pacing_server(clock: EchoClock) -> AsyncIterator[EchoServer]:
    """Paces replies at 100 kB/s of ``clock``'s time, in 1,000-byte pieces; small buffers."""
    config = ServerConfig(
        port=0, bandwidth=100_000, sndbuf=4096, write_timeout=30, idle_timeout=0, line_timeout=0
    )
    async with EchoServer(config, clock=clock) as server:
        yield server


async def test_paced_pieces_go_out_only_as_the_kernel_takes_them(
    pacing_server: EchoServer, clock: EchoClock, raw_client: socket.socket
) -> None:
    server = pacing_server
    await send(raw_client, server, (b"a" * 60_000 + b"\n") * 2)
    for _ in range(200):  # each sweep lets one piece go, if the kernel takes it
        clock.advance(1)
        server.check_timeouts()
        await asyncio.sleep(0)
        if server.stats.connections_rejected[CloseReason.WRITE_TIMEOUT]:
            break
    # Cut off 30 s after the kernel stopped taking pieces, with no more than
    # a piece waiting in the transport: none were queued that nobody took.
    assert server.stats.connections_rejected[CloseReason.WRITE_TIMEOUT] == 1
    assert server.stats.bytes_sent < WRITE_HIGH_WATER


@pytest.fixture
async def refusing_server(
    clock: EchoClock, request: pytest.FixtureRequest
) -> AsyncIterator[EchoServer]:
    """An idle timeout of 10 s of ``clock``'s time, and the faults the test's param names."""
    config = ServerConfig(port=0, idle_timeout=10, line_timeout=0, **request.param)
    async with EchoServer(config, clock=clock) as server:
        yield server


async def refuse_for_idleness(server: EchoServer, clock: EchoClock) -> None:
    server.check_timeouts()  # the sweep that sees the last read
    clock.advance(10)
    server.check_timeouts()
    assert server.stats.connections_rejected[CloseReason.IDLE_TIMEOUT] == 1


@pytest.mark.parametrize("refusing_server", [{"bandwidth": 100}], indirect=True)
async def test_a_timeout_closes_a_paced_connection_after_its_linger(
    refusing_server: EchoServer, clock: EchoClock
) -> None:
    server = refusing_server
    reader, writer = await asyncio.open_connection(*server.addresses[0])
    reply = b"X" * 5000 + b"_SB\n"  # 50 s at 100 B/s
    writer.write(b"x" * 5000 + b"\n")
    await until(lambda: server.stats.bytes_received == 5001)
    await refuse_for_idleness(server, clock)
    clock.advance(2)  # the refusal's linger: what is still held is dropped
    server.check_timeouts()
    received = await read_to_end(reader)
    writer.close()
    # Cut short, so no error line: it would read as the end of the reply.
    assert reply.startswith(received)
    assert len(received) < len(reply)
    await until(lambda: server.stats.connections_active == 0)
    assert server.stats.bytes_buffered == 0


@pytest.mark.parametrize("refusing_server", [{"delay": "5m"}], indirect=True)
async def test_a_timeout_sends_its_error_line_past_delayed_replies_after_its_linger(
    refusing_server: EchoServer, clock: EchoClock
) -> None:
    server = refusing_server
    reader, writer = await asyncio.open_connection(*server.addresses[0])
    writer.write(b"late\n")
    await until(lambda: server.stats.bytes_received == 5)
    await refuse_for_idleness(server, clock)
    clock.advance(1)
    server.check_timeouts()  # within the linger: the delayed reply is still owed
    assert server.stats.connections_active == 1
    clock.advance(1)
    server.check_timeouts()
    assert await read_to_end(reader) == b"ERR idle timeout\n"
    writer.close()
    await until(lambda: server.stats.connections_active == 0)
