"""Abuse resistance: slow senders, crowds from one address, amplification, the memory budget.

Every test runs on both loops over real sockets; where time is the subject,
the server runs on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

import aioecho
from aioecho import CloseReason, EchoServer, ServerConfig
from aioecho.core import RECEIVE_BUFFER_SIZE, REPLY_SLICE, WRITE_HIGH_WATER
from aioecho.pytest_plugin import EchoClock, EchoTestServer

from .support import read_to_end, until


@pytest.fixture
def clock(echo_clock: EchoClock) -> EchoClock:
    return echo_clock


@pytest.fixture
def timed_server(echo_server: EchoTestServer, echo_clock: EchoClock) -> EchoServer:
    """The plugin's server, with the test's ``echo_server`` mark, its time limits on ``clock``."""
    return echo_server


async def send_and_wait(server: EchoServer, writer: asyncio.StreamWriter, data: bytes) -> None:
    """Send ``data`` and wait until the server has read it."""
    expected = server.stats.bytes_received + len(data)
    writer.write(data)
    await until(lambda: server.stats.bytes_received == expected)


def elapse(server: EchoServer, clock: EchoClock, seconds: float) -> None:
    """Move the server's clock on, then let it apply its time limits."""
    clock.advance(seconds)
    server.check_timeouts()


# -- slow senders --------------------------------------------------------------


@pytest.mark.echo_server(line_timeout=30, idle_timeout=0)
async def test_a_line_trickled_in_slower_than_the_line_timeout_is_refused(
    timed_server: EchoServer, clock: EchoClock
) -> None:
    reader, writer = await asyncio.open_connection(*timed_server.addresses[0])
    # A byte every 9 s would keep an idle timer at bay.
    for wait, piece in ((0, b"sl"), (9, b"o"), (9, b"w"), (9, b"l")):
        elapse(timed_server, clock, wait)
        await send_and_wait(timed_server, writer, piece)
    elapse(timed_server, clock, 3)  # 30 s since the line's first byte
    assert await read_to_end(reader) == b"ERR line timeout\n"
    writer.close()
    assert timed_server.stats.connections_rejected[CloseReason.LINE_TIMEOUT] == 1


@pytest.mark.echo_server(line_timeout=30, idle_timeout=0)
async def test_the_line_timeout_counts_from_each_lines_first_byte(
    timed_server: EchoServer, clock: EchoClock
) -> None:
    reader, writer = await asyncio.open_connection(*timed_server.addresses[0])
    await send_and_wait(timed_server, writer, b"first\nsec")
    elapse(timed_server, clock, 20)
    await send_and_wait(timed_server, writer, b"ond\nthi")  # "second" took 20 s: in time
    elapse(timed_server, clock, 20)  # 40 s since "sec", 20 s since "thi"
    writer.write(b"rd\n")
    expected = b"FIRST_SB\nSECOND_SB\nTHIRD_SB\n"
    assert await reader.readexactly(len(expected)) == expected
    writer.close()
    assert not timed_server.stats.connections_rejected[CloseReason.LINE_TIMEOUT]


@pytest.mark.echo_server(idle_timeout=300, line_timeout=0)
async def test_an_idle_connection_is_told_and_closed_and_a_talking_one_is_not(
    timed_server: EchoServer, clock: EchoClock
) -> None:
    address = timed_server.addresses[0]
    silent_reader, silent = await asyncio.open_connection(*address)
    async with await aioecho.connect(*address) as talker:
        for _ in range(3):  # 600 s in all, never 300 s without a request
            assert await talker.request("ping") == b"PING_SB"
            timed_server.check_timeouts()
            elapse(timed_server, clock, 200)
        assert await read_to_end(silent_reader) == b"ERR idle timeout\n"
        assert await talker.request("still here") == b"STILL HERE_SB"
    silent.close()
    assert timed_server.stats.connections_rejected[CloseReason.IDLE_TIMEOUT] == 1


# -- connections per address ---------------------------------------------------------


@pytest.mark.echo_server(max_connections_per_ip=2)
async def test_connections_beyond_the_per_address_limit_are_refused(
    echo_server: EchoServer,
) -> None:
    host, port = echo_server.addresses[0]
    first, second = [await aioecho.connect(host, port) for _ in range(2)]
    for client in (first, second):
        assert await client.request("in") == b"IN_SB"
    reader, writer = await asyncio.open_connection(host, port)
    assert await read_to_end(reader) == b"ERR too many connections from your address\n"
    writer.close()
    other_reader, other = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
    other.write(b"other address\n")
    assert await other_reader.readline() == b"OTHER ADDRESS_SB\n"
    assert echo_server.stats.connections_rejected[CloseReason.MAX_CONNECTIONS_PER_IP] == 1
    await first.close()
    await until(lambda: echo_server.stats.connections_active == 2)
    async with await aioecho.connect(host, port) as newcomer:
        assert await newcomer.request("my turn") == b"MY TURN_SB"
    await second.close()
    other.close()


# -- amplification ----------------------------------------------------------------


async def test_a_peer_that_never_reads_pins_a_bounded_amount_whatever_the_suffix() -> None:
    # Accepted sockets inherit the listener's small send buffer, so the
    # kernel absorbs little and the server's own buffers show what it holds.
    listening = socket.create_server(("127.0.0.1", 0))
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    config = ServerConfig(suffix="x" * 60, write_timeout=0)
    async with EchoServer(config, sockets=[listening]) as server:
        sock = socket.create_connection(listening.getsockname())
        lines = 16 * 1024  # empty lines, in one read: 61 bytes of reply per byte sent
        sock.sendall(b"\n" * lines)

        def blocked_and_counted() -> bool:
            server.check_timeouts()  # refresh the count of unsent replies
            return server.stats.bytes_buffered >= WRITE_HIGH_WATER

        await until(blocked_and_counted)
        held = server.stats.bytes_buffered
        assert held <= WRITE_HIGH_WATER + REPLY_SLICE + RECEIVE_BUFFER_SIZE
        await answered_in_order(sock, b"x" * 60 + b"\n", lines)


async def answered_in_order(sock: socket.socket, reply: bytes, count: int) -> None:
    """Read from ``sock`` until ``count`` replies came; each must be ``reply``."""
    # Once the peer reads, everything it sent is answered, in order.
    sock.setblocking(False)
    received = bytearray()
    loop = asyncio.get_running_loop()
    while len(received) < count * len(reply):
        received += await loop.sock_recv(sock, 1 << 20)
    assert received == reply * count
    sock.close()


# -- the global memory budget ---------------------------------------------------------


@pytest.mark.echo_server(max_client_memory="1M")
async def test_past_the_memory_budget_the_biggest_holders_are_refused(
    echo_server: EchoServer,
) -> None:
    address = echo_server.addresses[0]
    held_line = b"y" * 60_000  # 17 such lines fit in 1 MiB, 40 do not
    clients = [await asyncio.open_connection(*address) for _ in range(40)]
    for _, writer in clients:
        writer.write(held_line)

    def settled() -> bool:  # every connection refused, or holding its whole line
        stats = echo_server.stats
        refused = stats.connections_rejected[CloseReason.CLIENT_MEMORY]
        return bool(refused) and stats.bytes_buffered == len(held_line) * (40 - refused)

    await until(settled)
    stats = echo_server.stats
    assert stats.connections_rejected[CloseReason.CLIENT_MEMORY] == 23
    assert stats.bytes_buffered <= 1024 * 1024
    survivors = 0
    for reader, writer in clients:
        writer.write(b"\n")
        reply = await reader.readline()
        if reply == b"ERR client memory limit\n":
            assert await read_to_end(reader) == b""
        else:
            assert reply == held_line.upper() + b"_SB\n"
            survivors += 1
        writer.close()
    assert survivors == 17
    async with await aioecho.connect(*address) as newcomer:
        assert await newcomer.request("room again") == b"ROOM AGAIN_SB"


@pytest.mark.parametrize(
    ("text", "size"), [("65536", 65536), ("64K", 65536), ("256M", 256 << 20), ("1g", 1 << 30)]
)
def test_memory_budgets_are_written_with_unit_suffixes(text: str, size: int) -> None:
    assert ServerConfig(max_client_memory=text).max_client_memory == size  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["lots", "1.5M", "-1", ""])
def test_a_memory_budget_that_is_not_a_byte_count_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="byte count"):
        ServerConfig(max_client_memory=text)  # type: ignore[arg-type]
