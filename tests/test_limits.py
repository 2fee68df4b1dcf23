"""Limits and abuse resistance, over real sockets, on both loops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import struct
import subprocess

import pytest

import aioecho
from aioecho import CloseReason, EchoServer
from aioecho.pytest_plugin import EchoClock

from .support import (
    Address,
    flood_until_held,
    log_until,
    read_to_end,
    serve_in_subprocess,
    until,
)


@pytest.mark.echo_server(max_connections=3)
async def test_a_client_over_max_connections_is_refused_and_others_kept(
    echo_server: EchoServer,
) -> None:
    address = echo_server.addresses[0]
    clients = [await aioecho.connect(*address) for _ in range(3)]
    for client in clients:  # a round trip each: all three are admitted
        assert await client.request("in") == b"IN_SB"
    reader, writer = await asyncio.open_connection(*address)
    assert await read_to_end(reader) == b"ERR max connections reached\n"
    writer.close()
    for client in clients:
        assert await client.request("still here") == b"STILL HERE_SB"
    stats = echo_server.stats
    assert stats.connections_rejected[CloseReason.MAX_CONNECTIONS] == 1
    assert (stats.connections_active, stats.connections_accepted) == (3, 3)
    await clients.pop().close()
    await until(lambda: echo_server.stats.connections_active == 2)
    async with await aioecho.connect(*address) as newcomer:
        assert await newcomer.request("my turn") == b"MY TURN_SB"
    for client in clients:
        await client.close()


async def test_max_connections_defaults_below_the_open_file_limit(echo_server: EchoServer) -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 0 < echo_server.max_connections < soft


@pytest.mark.echo_server(write_timeout=30)
async def test_a_peer_that_never_reads_is_cut_off_after_the_write_timeout(
    echo_server: EchoServer, echo_clock: EchoClock
) -> None:
    hog = await flood_until_held(echo_server, echo_server.addresses[0])
    echo_clock.advance(29)
    assert echo_server.stats.connections_rejected[CloseReason.WRITE_TIMEOUT] == 0
    echo_clock.advance(2)  # 31 s without a byte taken: cut off
    await until(lambda: echo_server.stats.connections_rejected[CloseReason.WRITE_TIMEOUT] == 1)
    await until(lambda: echo_server.stats.connections_active == 0)
    async with await aioecho.connect(*echo_server.addresses[0]) as other:
        assert await other.request("unaffected") == b"UNAFFECTED_SB"
    hog.close()


async def garbage_and_resets(address: Address, rounds: int) -> None:
    """Connections that spray binary junk, overlong lines, or reset mid-stream."""
    junk = bytes(range(256)) * 64
    for i in range(rounds):
        try:
            _, writer = await asyncio.open_connection(*address)
        except OSError:
            continue  # refused while the server is full: that is its right
        writer.write(junk if i % 2 else b"x" * 100_000)
        sock = writer.get_extra_info("socket")
        if i % 3 == 0:  # linger zero: close() sends RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()


@pytest.mark.echo_server(max_line=1000, write_timeout=0.5, max_connections=200)
async def test_abuse_costs_the_abuser_not_the_well_behaved_client(echo_server: EchoServer) -> None:
    address = echo_server.addresses[0]
    hogs = [await flood_until_held(echo_server, address) for _ in range(3)]
    abusers = [asyncio.create_task(garbage_and_resets(address, 100)) for _ in range(4)]
    async with await aioecho.connect(*address) as client:
        for i in range(300):
            assert await client.request(f"request {i}") == f"REQUEST {i}_SB".encode()
    await asyncio.gather(*abusers)
    for hog in hogs:
        hog.close()
    stats = echo_server.stats
    assert stats.connections_rejected[CloseReason.LINE_TOO_LONG] > 0


@pytest.mark.parametrize("framing", ["line", "chunk"])
async def test_stats_count_every_byte_and_connection(framing: str) -> None:
    async with await aioecho.start_server(port=0, framing=framing) as server:
        async with await aioecho.connect(*server.addresses[0]) as client:
            await client.send(b"abc\n")
            expected = b"ABC_SB\n" if framing == "line" else b"ABC\n_SB"
            assert await client.reader.readexactly(len(expected)) == expected
        stats = server.stats
    assert (stats.bytes_received, stats.bytes_sent, stats.messages_answered) == (4, 7, 1)
    assert stats.connections_accepted == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_running_out_of_descriptors_pauses_accepting_and_recovers(loop: str) -> None:
    # 48 descriptors, about 30 left for clients; ask for more connections
    # than that so the kernel's accept queue holds the rest.
    flags = ("--loop", loop, "--max-connections", "1000")
    with serve_in_subprocess(*flags, open_files=48) as server:
        address = (server.host, server.port)
        clients = [socket.create_connection(address, timeout=20) for _ in range(60)]
        first, last = clients[0], clients[-1]
        first.sendall(b"served\n")
        assert first.recv(100) == b"SERVED_SB\n"  # existing connections keep working
        last.sendall(b"waiting\n")  # queued in the kernel: no descriptor for it yet
        for sock in clients[1:40]:
            sock.close()
        assert last.recv(100) == b"WAITING_SB\n"  # accepted once descriptors were freed
        # Logged once the kernel's queue is empty, which may come after that reply.
        log = log_until(server.process, b"accepting connections again")
        for sock in (first, *clients[40:]):
            sock.close()
        server.process.terminate()
        assert server.process.stderr is not None
        log += server.process.stderr.read()
        assert server.process.wait(timeout=20) == 0
    assert log.count(b"cannot accept: Too many open files") == 1
    assert b"Traceback" not in log


def log_so_far(process: subprocess.Popen[bytes]) -> bytes:
    """What a server has logged until now, without waiting for more."""
    assert process.stderr is not None
    fd, seen = process.stderr.fileno(), b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_descriptor_freed_with_nobody_waiting_ends_the_pause(loop: str) -> None:
    # Linux's accept() takes a descriptor before it looks at the queue: the
    # server that hands out its last one fails the next accept with EMFILE
    # though nobody waits, so no new client will come to wake the listener.
    flags = ("--loop", loop, "--max-connections", "1000")
    with serve_in_subprocess(*flags, open_files=48) as server:
        address, clients, log = (server.host, server.port), [], b""
        while b"cannot accept" not in log:
            client = socket.create_connection(address, timeout=20)
            clients.append(client)
            client.sendall(b"one more\n")
            assert client.recv(100) == b"ONE MORE_SB\n"
            # The pause is logged before the reply of the client that took
            # the last descriptor is sent.
            log += log_so_far(server.process)
        clients.pop().close()
        log += log_until(server.process, b"accepting connections again")
        for client in clients:
            client.close()
    assert log.count(b"cannot accept: Too many open files") == 1


def server_end_of(client: socket.socket) -> socket.socket:
    """The server's end of ``client``'s connection, found among this process's descriptors
    (the server runs in the test's process): a duplicate, for getsockopt()."""
    wanted = (client.getpeername(), client.getsockname())
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fd = os.dup(int(name))
            try:
                sock = socket.socket(fileno=fd)
            except OSError:
                os.close(fd)  # not a socket
                continue
            with contextlib.suppress(OSError):  # not connected
                if (sock.getsockname(), sock.getpeername()) == wanted:
                    return sock
            sock.close()
    raise LookupError(f"no server end of {wanted} in this process")


@pytest.mark.echo_server(sndbuf=8192)
async def test_sndbuf_sets_the_send_buffer_of_each_accepted_connection(
    echo_server: EchoServer,
) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write(b"hi\n")
    assert await reader.readline() == b"HI_SB\n"  # accepted and served
    client = writer.get_extra_info("socket")
    with server_end_of(client) as accepted:  # type: ignore[arg-type]
        # Linux doubles the value asked for, for its own bookkeeping.
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 8192
    writer.close()


@pytest.mark.echo_server(idle_timeout=300)
async def test_the_plugin_clock_drives_the_idle_timeout(
    echo_server: EchoServer, echo_clock: EchoClock
) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    echo_clock.advance(299)
    writer.write(b"still here\n")
    assert await reader.readline() == b"STILL HERE_SB\n"
    echo_clock.advance(301)
    assert await reader.read() == b"ERR idle timeout\n"
    writer.close()
