"""Server lifecycle and robustness, over real sockets, on both loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

import pytest

import aioecho
from aioecho import EchoServer
from aioecho.core import RECEIVE_BUFFER_SIZE, REPLY_SLICE, WRITE_HIGH_WATER

from .support import FLOOD_LINE, exchange, flood_until_held


async def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes.

    A server that closes with unread requests in its receive buffer makes the
    kernel send RST instead of FIN; what was sent before it still arrives.
    """
    loop = asyncio.get_running_loop()
    received = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := await loop.sock_recv(sock, 1 << 20):
            received += chunk
    sock.close()
    return bytes(received)


async def test_port_zero_binds_a_real_port_and_serves(echo_server: EchoServer) -> None:
    host, port = echo_server.addresses[0]
    assert host == "127.0.0.1"
    assert port > 0
    assert echo_server.is_serving
    async with await aioecho.connect(host, port) as client:
        assert await client.request("hello") == b"HELLO_SB"


async def test_leaving_the_block_stops_the_server() -> None:
    async with await aioecho.start_server(port=0) as server:
        address = server.addresses[0]
    assert not server.is_serving
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)


async def test_start_then_shutdown_without_context_manager() -> None:
    server = EchoServer(aioecho.ServerConfig(port=0))
    assert server.addresses == []
    await server.start()
    assert await exchange(server.addresses[0], b"x\n") == b"X_SB\n"
    await server.shutdown()
    assert not server.is_serving


async def test_shutdown_is_idempotent_and_concurrent_calls_share_it(
    echo_server: EchoServer,
) -> None:
    await asyncio.gather(echo_server.shutdown(), echo_server.shutdown(1), echo_server.shutdown())
    await echo_server.shutdown()
    assert not echo_server.is_serving


async def test_cancelling_serve_forever_is_a_graceful_stop() -> None:
    server = EchoServer(aioecho.ServerConfig(port=0))
    await server.start()
    serving = asyncio.create_task(server.serve_forever())
    address = server.addresses[0]
    assert await exchange(address, b"up\n") == b"UP_SB\n"
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert not server.is_serving
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)


async def test_serve_forever_returns_after_shutdown(echo_server: EchoServer) -> None:
    serving = asyncio.create_task(echo_server.serve_forever())
    await echo_server.shutdown()
    await serving  # returns instead of hanging


async def test_graceful_shutdown_delivers_replies_already_owed(echo_server: EchoServer) -> None:
    # The peer has not read a byte: megabytes of replies sit in the server's
    # buffer and the kernel's when the shutdown starts.
    sock = await flood_until_held(echo_server, echo_server.addresses[0])
    stopping = asyncio.create_task(echo_server.shutdown(timeout=30))
    received = await read_until_closed(sock)
    await stopping
    answered = echo_server.stats.messages_answered
    assert answered > 1000
    assert received == (b"X" * 63 + b"_SB\n") * answered


# The timeout cancels the wait for no open connections: the cancellation
# passes the compiled core without a deprecated throw() signature.
@pytest.mark.filterwarnings("error::DeprecationWarning")
async def test_shutdown_timeout_aborts_a_peer_that_never_reads() -> None:
    server = await aioecho.start_server(port=0)
    sock = await flood_until_held(server, server.addresses[0])
    await server.shutdown(timeout=0.1)  # must return although replies are still owed
    assert server.stats.connections_active == 0
    sock.close()


async def test_a_peer_that_never_reads_cannot_grow_server_memory(echo_server: EchoServer) -> None:
    sock = await flood_until_held(echo_server, echo_server.addresses[0])
    # Blocked: what it holds for the peer is its bound, however much more
    # the peer sends (the kernel keeps the rest).
    for _ in range(16):
        with contextlib.suppress(BlockingIOError):
            sock.send(FLOOD_LINE * 1024)
    echo_server.check_timeouts()
    assert echo_server.stats.bytes_buffered <= WRITE_HIGH_WATER + REPLY_SLICE + RECEIVE_BUFFER_SIZE
    async with await aioecho.connect(*echo_server.addresses[0]) as other:
        assert await other.request("still served") == b"STILL SERVED_SB"
    sock.close()


async def test_a_reset_mid_stream_is_routine(
    echo_server: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    address = echo_server.addresses[0]
    async with await aioecho.connect(*address) as bystander:
        for _ in range(20):
            sock = socket.create_connection(address)
            sock.sendall(b"half a li")
            # Linger zero: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        assert await bystander.request("fine") == b"FINE_SB"
    await echo_server.shutdown()
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


@pytest.mark.echo_server(max_line=16)
async def test_one_connections_error_does_not_touch_another(echo_server: EchoServer) -> None:
    address = echo_server.addresses[0]
    async with await aioecho.connect(*address) as steady:
        assert await steady.request("before") == b"BEFORE_SB"
        with pytest.raises(aioecho.ServerError, match="line too long"):
            async with await aioecho.connect(*address) as offender:
                await offender.request("x" * 100)
        assert await steady.request("after") == b"AFTER_SB"


async def test_unknown_option_is_rejected() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        await aioecho.start_server(no_such_option=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 70000}, "port"),
        ({"max_line": 0}, "max_line"),
        ({"suffix": "a\nb"}, "suffix"),
        ({"framing": "words"}, "framing"),
    ],
)
async def test_invalid_options_are_clear_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(aioecho.ConfigError, match=message):
        await aioecho.start_server(**options)
