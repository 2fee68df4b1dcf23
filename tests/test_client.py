"""The async client API against a real server, on both loops."""

from __future__ import annotations

import pytest

import aioecho
from aioecho import EchoServer

from .support import server_options


async def test_request_returns_the_reply_without_terminator(server: EchoServer) -> None:
    async with await aioecho.connect(*server.addresses[0]) as client:
        assert await client.request("hello") == b"HELLO_SB"
        assert await client.request(b"crlf\r") == b"CRLF_SB"
        assert await client.request("") == b"_SB"


async def test_a_request_is_one_line(server: EchoServer) -> None:
    async with await aioecho.connect(*server.addresses[0]) as client:
        with pytest.raises(ValueError, match="single line"):
            await client.request("two\nlines")


@server_options(max_line=3)
async def test_an_error_reply_raises_server_error(server: EchoServer) -> None:
    async with await aioecho.connect(*server.addresses[0]) as client:
        with pytest.raises(aioecho.ServerError, match=r"ERR line too long \(max 3 bytes\)"):
            await client.request("long")


async def test_raw_access_and_half_close(server: EchoServer) -> None:
    async with await aioecho.connect(*server.addresses[0]) as client:
        await client.send(b"a\nb")
        client.half_close()
        assert await client.read_reply() == b"A_SB\n"
        assert await client.read_reply() == b"B_SB"
        assert await client.read_reply() == b""


async def test_a_server_that_closes_before_replying_is_a_connection_error(
    server: EchoServer,
) -> None:
    async with await aioecho.connect(*server.addresses[0]) as client:
        await server.shutdown()
        with pytest.raises(ConnectionError):
            await client.request("anyone?")
