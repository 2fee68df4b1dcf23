"""The async client API against a real server, on both loops."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

import aioecho
from aioecho import EchoServer
from aioecho.client import (
    DEFAULT_MAX_REPLY,
    ConnectionClosedError,
    ReplyTimeoutError,
    ReplyTooLongError,
    reply_bound,
)
from aioecho.tls import client_context

from . import rogue as behaviours
from .rogue import ENDLESS_BOUNDED, rogue_server


async def test_request_returns_the_reply_without_terminator(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        assert await client.request("hello") == b"HELLO_SB"
        assert await client.request(b"crlf\r") == b"CRLF_SB"
        assert await client.request("") == b"_SB"


async def test_a_request_is_one_line(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        with pytest.raises(ValueError, match="single line"):
            await client.request("two\nlines")


@pytest.mark.echo_server(max_line=3)
async def test_an_error_reply_raises_server_error(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        with pytest.raises(
            aioecho.ServerError, match=r"^ERR line too long \(max 3 bytes\)$"
        ) as error:
            await client.request("long")
    assert error.value.reply == b"ERR line too long (max 3 bytes)\n"


async def test_the_echo_of_an_err_line_is_a_reply(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        assert await client.request("err not an error") == b"ERR NOT AN ERROR_SB"


@pytest.mark.echo_server(suffix="")
async def test_without_a_suffix_every_err_line_is_an_error(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0], suffix="") as client:
        with pytest.raises(aioecho.ServerError, match=r"^ERR ECHOED$"):
            await client.request("err echoed")


async def test_finish_after_every_reply_closes_quietly(echo_server: EchoServer) -> None:
    client = await aioecho.connect(*echo_server.addresses[0])
    assert await client.request("last") == b"LAST_SB"
    await client.finish()
    assert client.writer.transport.is_closing()


async def test_a_reply_to_no_line_is_an_error() -> None:
    with rogue_server(behaviours.streams_replies) as rogue:
        client = await aioecho.connect("127.0.0.1", rogue.port)
        assert await client.request("one") == b"X_SB"
        with pytest.raises(aioecho.ExtraReplyError, match="more replies than lines"):
            await client.finish()
        assert client.writer.transport.is_closing()


async def test_raw_access_and_half_close(echo_server: EchoServer) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        await client.send(b"a\nb")
        client.half_close()
        assert await client.read_reply() == b"A_SB\n"
        assert await client.read_reply() == b"B_SB"
        assert await client.read_reply() == b""


async def test_a_server_that_closes_before_replying_is_a_connection_error(
    echo_server: EchoServer,
) -> None:
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        await echo_server.shutdown()
        with pytest.raises(ConnectionError):
            await client.request("anyone?")


@pytest.mark.echo_server(max_line=100)
async def test_a_reply_of_exactly_max_reply_bytes_is_accepted(echo_server: EchoServer) -> None:
    bound = reply_bound(100, "_SB")  # 100 bytes, the suffix, CRLF
    address = echo_server.addresses[0]
    async with await aioecho.connect(*address, max_reply=bound) as client:
        assert await client.request(b"x" * 100 + b"\r") == b"X" * 100 + b"_SB"
    async with await aioecho.connect(*address, max_reply=bound - 1) as client:
        with pytest.raises(ReplyTooLongError, match=f"longer than {bound - 1} bytes"):
            await client.request(b"x" * 100 + b"\r")


async def test_an_endless_line_is_an_error_after_about_max_reply_bytes() -> None:
    with rogue_server(behaviours.endless_line) as rogue:
        async with await aioecho.connect(port=rogue.port) as client:
            with pytest.raises(ReplyTooLongError, match=f"longer than {DEFAULT_MAX_REPLY} bytes"):
                await client.request("hello")
            # The client hung up: the server learns it from a failed send.
            assert await asyncio.to_thread(rogue.finished.wait, 30)
            with pytest.raises(ConnectionClosedError, match="earlier overlong reply"):
                await client.request("again")
    assert rogue.sent < ENDLESS_BOUNDED


async def test_a_reply_cut_short_by_a_close_is_a_connection_error() -> None:
    with rogue_server(behaviours.closes_mid_reply) as rogue:
        async with await aioecho.connect(port=rogue.port) as client:
            with pytest.raises(ConnectionClosedError, match="after 4 bytes of a reply"):
                await client.request("hello")


async def test_a_close_without_reply_is_a_connection_error() -> None:
    with rogue_server(behaviours.closes_without_reply) as rogue:
        async with await aioecho.connect(port=rogue.port) as client:
            with pytest.raises(ConnectionClosedError, match="before replying"):
                await client.request("hello")


async def test_a_request_times_out_and_leaves_the_connection_closed() -> None:
    with rogue_server(behaviours.silent) as rogue:
        async with await aioecho.connect(port=rogue.port) as client:
            with pytest.raises(ReplyTimeoutError, match=r"no reply within 0\.1 s"):
                await client.request("hello", timeout=0.1)
            # A late reply would now answer the wrong request: the client hung up.
            assert await asyncio.to_thread(rogue.finished.wait, 30)
            with pytest.raises(ConnectionClosedError, match="earlier timeout"):
                await client.request("hello")


async def test_the_timeout_of_connect_is_the_default_of_each_request() -> None:
    with rogue_server(behaviours.silent) as rogue:
        async with await aioecho.connect(port=rogue.port, timeout=0.1) as client:
            with pytest.raises(TimeoutError, match=r"no reply within 0\.1 s"):
                await client.read_reply()


async def test_tls_to_a_plain_server_ends_within_the_connect_timeout(
    echo_server: EchoServer,
) -> None:
    # The echo of the TLS hello starts like a TLS record, whose rest never comes.
    with pytest.raises(
        TimeoutError, match=r"no TLS handshake within 0\.1 s \(is it a TLS server\?\)"
    ):
        await aioecho.connect(*echo_server.addresses[0], ssl=client_context(), connect_timeout=0.1)


async def test_tls_to_a_server_that_answers_in_plain_text_fails_at_once() -> None:
    with (
        rogue_server(behaviours.answers_in_plain_text) as rogue,
        pytest.raises(ssl.SSLError, match="WRONG_VERSION_NUMBER"),
    ):
        await aioecho.connect(port=rogue.port, ssl=client_context())


async def test_a_connect_that_gets_no_answer_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        # Nobody accepts: once the listen queue is full, the kernel ignores
        # further connection requests and their connects wait.
        queued = [socket.socket() for _ in range(3)]
        for sock in queued:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        with pytest.raises(TimeoutError, match=r"no connection within 0\.1 s"):
            await aioecho.connect(port=port, connect_timeout=0.1)
        for sock in queued:
            sock.close()
