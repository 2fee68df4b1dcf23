"""Every protocol rule, over real sockets, on both loops."""

from __future__ import annotations

import asyncio
import socket

import pytest

from aioecho import CloseReason, EchoServer

from .support import LINE_RULES, Address, exchange


@pytest.mark.parametrize(("request_bytes", "reply"), LINE_RULES)
async def test_line_rules(echo_server: EchoServer, request_bytes: bytes, reply: bytes) -> None:
    assert await exchange(echo_server.addresses[0], request_bytes) == reply


async def test_all_256_byte_values(echo_server: EchoServer) -> None:
    body = bytes(range(256)).replace(b"\n", b"")
    expected = body.upper() + b"_SB\n"
    assert await exchange(echo_server.addresses[0], body + b"\n") == expected
    assert expected == bytes(b - 32 if 97 <= b <= 122 else b for b in body) + b"_SB\n"


async def test_a_line_delivered_one_byte_per_send(echo_server: EchoServer) -> None:
    message = b"one byte at a time\r\nand another\n"
    pieces = [message[i : i + 1] for i in range(len(message))]
    expected = b"ONE BYTE AT A TIME_SB\r\nAND ANOTHER_SB\n"
    assert await exchange(echo_server.addresses[0], *pieces) == expected


async def test_a_thousand_lines_in_one_send_are_answered_in_order(echo_server: EchoServer) -> None:
    lines = [b"line %d of many" % i for i in range(1000)]
    reply = await exchange(echo_server.addresses[0], b"".join(line + b"\n" for line in lines))
    assert reply.split(b"\n")[:-1] == [line.upper() + b"_SB" for line in lines]
    assert echo_server.stats.messages_answered == 1000


async def test_lines_split_across_sends_at_every_point(echo_server: EchoServer) -> None:
    message = b"first\r\nsecond\n\nthird\n"
    expected = b"FIRST_SB\r\nSECOND_SB\n_SB\nTHIRD_SB\n"
    for cut in range(1, len(message)):
        assert await exchange(echo_server.addresses[0], message[:cut], message[cut:]) == expected


async def test_half_close_answers_a_trailing_partial_line(echo_server: EchoServer) -> None:
    assert await exchange(echo_server.addresses[0], b"whole\npartial") == b"WHOLE_SB\nPARTIAL_SB"


@pytest.mark.echo_server(max_line=8)
async def test_overlong_line_gets_earlier_replies_then_error_then_close(
    echo_server: EchoServer,
) -> None:
    reply = await exchange(echo_server.addresses[0], b"ok\n12345678\r\n123456789\nnever\n")
    assert reply == b"OK_SB\n12345678_SB\r\nERR line too long (max 8 bytes)\n"
    assert echo_server.stats.connections_rejected[CloseReason.LINE_TOO_LONG] == 1


@pytest.mark.echo_server(max_line=8)
async def test_overlong_line_is_refused_without_waiting_for_its_newline(
    echo_server: EchoServer,
) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write(b"fine\n123456789")  # no newline, no half-close: the server must act
    reply = await reader.read()  # returns only because the server closed
    assert reply == b"FINE_SB\nERR line too long (max 8 bytes)\n"
    writer.close()


@pytest.mark.echo_server(max_line=100)
async def test_after_an_overlong_line_a_fresh_connection_is_served(echo_server: EchoServer) -> None:
    address = echo_server.addresses[0]
    assert (await exchange(address, b"x" * 5000 + b"\n")).startswith(b"ERR line too long")
    assert await exchange(address, b"again\n") == b"AGAIN_SB\n"


@pytest.mark.echo_server(suffix="")
async def test_empty_suffix(echo_server: EchoServer) -> None:
    assert await exchange(echo_server.addresses[0], b"a\r\nb\nc") == b"A\r\nB\nC"


@pytest.mark.echo_server(suffix="!?")
async def test_custom_suffix(echo_server: EchoServer) -> None:
    assert await exchange(echo_server.addresses[0], b"a\r\nb\n") == b"A!?\r\nB!?\n"


@pytest.mark.echo_server(framing="chunk")
async def test_chunk_framing_serves_the_tutorial_client(echo_server: EchoServer) -> None:
    # The tutorial's client, verbatim in spirit: blocking socket, send, recv(1024).
    def tutorial_client(address: Address) -> list[bytes]:
        with socket.create_connection(address) as client:
            replies = []
            for message in ("hello", "select", "epoll"):
                client.send(message.encode("utf-8"))
                replies.append(client.recv(1024))
            return replies

    replies = await asyncio.to_thread(tutorial_client, echo_server.addresses[0])
    assert replies == [b"HELLO_SB", b"SELECT_SB", b"EPOLL_SB"]


@pytest.mark.echo_server(framing="chunk")
async def test_chunk_framing_answers_each_read_whole(echo_server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write(b"no\nline\nframing")
    await writer.drain()
    reply = await reader.readexactly(len(b"NO\nLINE\nFRAMING_SB"))
    assert reply == b"NO\nLINE\nFRAMING_SB"
    writer.close()


async def test_stats_count_bytes_and_messages(echo_server: EchoServer) -> None:
    await exchange(echo_server.addresses[0], b"ab\ncd\n")
    stats = echo_server.stats
    assert (stats.bytes_received, stats.bytes_sent, stats.messages_answered) == (6, 12, 2)
    assert stats.connections_accepted == 1
