"""Fault injection, over real sockets, on both loops.

Where a fault is a delay, a test measures it from before the request with a
lower bound only: the reply must not come early, and a loaded machine may
make it late by any amount.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

import aioecho
from aioecho import CloseReason, ConfigError, EchoServer, ServerConfig
from aioecho.core import Fault
from aioecho.durations import Duration, parse_duration
from aioecho.faults import DelayStep, FaultPlan, Verdict, parse_delays
from aioecho.faults.outbox import ENTRY_COST, FRAGMENT_GAP
from aioecho.pytest_plugin import EchoClock

from .support import (
    Address,
    exchange,
    read_to_end,
    serve_in_subprocess,
    until,
)
from .test_observability import http_get, samples

if TYPE_CHECKING:
    from aioecho.pytest_plugin import EchoServerFactory

# -- the syntax ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("150us", 150e-6),
        ("150µs", 150e-6),
        ("2ms", 0.002),
        ("0.5s", 0.5),
        ("1m", 60.0),
        ("3", 3.0),
        (".25", 0.25),
        (" 7ms ", 0.007),
    ],
)
def test_durations_read_with_their_unit_or_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert Duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ms", "5h", "1.5.2s", "-2ms", "2 ms", "nan"])
def test_a_bad_duration_names_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match=r"150us, 2ms, 0\.5s, 1m"):
        parse_duration(text)


def test_delay_spec_reads_fortio_syntax() -> None:
    assert parse_delays("") == ()
    assert parse_delays("50ms") == (DelayStep(0.05, 100.0),)
    assert parse_delays("50ms:100") == (DelayStep(0.05, 100.0),)
    steps = parse_delays("150us:10,2ms:5,0.5s:1")
    assert [step.seconds for step in steps] == pytest.approx([150e-6, 0.002, 0.5])
    assert [step.below for step in steps] == pytest.approx([10, 15, 16])


def test_delay_spec_draws_each_delay_with_its_share_and_no_delay_for_the_rest() -> None:
    plan = FaultPlan(delays=parse_delays("1ms:10,2ms:20,3ms:30"), seed=1)
    rng = next(plan.generators())
    draws = [plan.delay(rng) for _ in range(20_000)]
    shares = {delay: draws.count(delay) / len(draws) for delay in (0.0, 0.001, 0.002, 0.003)}
    assert shares == pytest.approx({0.0: 0.4, 0.001: 0.1, 0.002: 0.2, 0.003: 0.3}, abs=0.02)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": "1ms:60,2ms:50"}, "more than 100"),
        ({"delay": "1ms:x"}, "not a percentage"),
        ({"delay": "1ms:-5"}, "0..100"),
        ({"delay": "1ms,2ms"}, "DURATION:PERCENT"),
        ({"delay": "soon"}, "not a duration"),
        ({"jitter": "-1ms"}, "duration"),
        ({"bandwidth": "fast"}, "byte count"),
        ({"bandwidth": -1}, "bandwidth"),
        ({"fragment": -1}, "fragment"),
        ({"drop": 1.5}, "drop"),
        ({"reset": -0.1}, "reset"),
        ({"close_after": -1}, "close_after"),
        ({"stall_after": -1}, "stall_after"),
        ({"framing": "chunk", "drop": 0.5}, "line framing"),
    ],
)
def test_bad_fault_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig(**options)


def test_every_fault_is_off_by_default() -> None:
    assert not ServerConfig().faults.active
    assert not ServerConfig(seed=3).faults.active  # a seed alone changes nothing
    assert ServerConfig(delay="1ms", jitter="2ms", close_after="1K").faults == FaultPlan(
        delays=(DelayStep(0.001, 100.0),), jitter=0.002, close_after=1024
    )


def test_faults_from_the_command_line() -> None:
    faults = ("--close-after", "4", "--delay", "1ms:50", "--seed", "1")
    with (
        serve_in_subprocess(*faults) as server,
        socket.create_connection((server.host, server.port)) as sock,
    ):
        sock.sendall(b"hello\n")
        assert _read_until_eof(sock) == b"HELL"


def _read_until_eof(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(1024):
        received += chunk
    return received


# -- helpers ---------------------------------------------------------------------


async def timed_exchange(address: Address, request: bytes, reply_size: int) -> tuple[bytes, float]:
    """Send ``request``, read ``reply_size`` bytes; the reply, and seconds since the send."""
    reader, writer = await asyncio.open_connection(*address)
    started = time.monotonic()
    writer.write(request)
    reply = await reader.readexactly(reply_size)
    elapsed = time.monotonic() - started
    writer.close()
    return reply, elapsed


# -- delay and jitter --------------------------------------------------------------


def held_cost(reply: bytes) -> int:
    """What the outbox counts for one reply held alone: its bytearray and its entry."""
    return ENTRY_COST + bytearray(reply).__sizeof__()


@pytest.mark.echo_server(delay="50ms")
async def test_a_delay_holds_the_reply_back(echo_server: EchoServer) -> None:
    reply, elapsed = await timed_exchange(echo_server.addresses[0], b"late\n", 8)
    assert reply == b"LATE_SB\n"
    assert elapsed >= 0.05
    assert echo_server.stats.faults[Fault.DELAY] == 1
    assert echo_server.stats.messages_answered == 1


@pytest.mark.echo_server(delay="20ms:50,1ms:25", jitter="5ms", seed=3)
async def test_delayed_replies_keep_their_order(echo_server: EchoServer) -> None:
    lines = [b"line %d\n" % n for n in range(40)]
    reply = await exchange(echo_server.addresses[0], b"".join(lines[:17]), b"".join(lines[17:]))
    assert reply == b"".join(line.upper().replace(b"\n", b"_SB\n") for line in lines)
    faults = echo_server.stats.faults
    assert 0 < faults[Fault.DELAY] < 40  # 75 % of them, as drawn
    assert faults[Fault.JITTER] == 40


@pytest.mark.echo_server(jitter="40ms", seed=11)
async def test_jitter_delays_each_reply_by_its_draw(echo_server: EchoServer) -> None:
    plan = FaultPlan(jitter=0.04, seed=11)
    # The first connection's first draw, as the server makes it.
    drawn = plan.extra_delay(next(plan.generators()))
    reply, elapsed = await timed_exchange(echo_server.addresses[0], b"shaky\n", 9)
    assert reply == b"SHAKY_SB\n"
    assert elapsed >= drawn > 0
    assert echo_server.stats.faults[Fault.JITTER] == 1


@pytest.mark.echo_server(delay="100ms")
async def test_delayed_replies_count_as_held_memory(echo_server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write(b"held\n")
    # Waiting in the server: its bytes, and the entry that holds them.
    await until(lambda: echo_server.stats.bytes_buffered == held_cost(b"HELD_SB\n"))
    assert await reader.readline() == b"HELD_SB\n"
    await until(lambda: echo_server.stats.bytes_buffered == 0)
    writer.close()


@pytest.mark.echo_server(delay="5s")
async def test_a_peer_that_pipelines_against_a_delay_holds_bounded_memory(
    echo_server: EchoServer,
) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(echo_server.addresses[0])
    sock.setblocking(False)
    with contextlib.suppress(TimeoutError):  # it ends blocked: the server stopped reading
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_sendall(sock, b"x\n" * 2_000_000), timeout=0.5
        )
    echo_server.check_timeouts()  # refreshes the count of unsent replies
    # A read of input, and an outbox over its high-water mark by one slice of
    # replies at most: the answering stopped, so did the reading.
    assert 0 < echo_server.stats.bytes_buffered <= 64 * 1024 + (64 + 128) * 1024
    echo_server.abort()  # not five seconds of replies to wait for
    sock.close()


# -- bandwidth and fragments --------------------------------------------------------


@pytest.mark.echo_server(bandwidth=1000, suffix="")
async def test_bandwidth_paces_a_reply(echo_server: EchoServer) -> None:
    reply, elapsed = await timed_exchange(echo_server.addresses[0], b"y" * 99 + b"\n", 100)
    assert reply == b"Y" * 99 + b"\n"
    # 100 bytes at 1000 B/s go in 10-byte pieces, the last 90 ms after the first.
    assert elapsed >= 0.09
    assert echo_server.stats.faults[Fault.BANDWIDTH] == 1


@pytest.mark.parametrize("size", [1, 3])
async def test_fragments_arrive_split_across_reads(
    echo_server_factory: EchoServerFactory, echo_clock: EchoClock, size: int
) -> None:
    server = await echo_server_factory(fragment=size)
    reader, writer = await asyncio.open_connection(*server.addresses[0])
    writer.write(b"hello\nworld\n")
    expected = [
        reply[start : start + size]
        for reply in (b"HELLO_SB\n", b"WORLD_SB\n")  # a piece never spans two replies
        for start in range(0, len(reply), size)
    ]
    pieces = []
    for _ in expected:
        # The test's clock holds the next piece back until it moves by one gap,
        # so a read sees exactly one piece however late it comes.
        pieces.append(await reader.read(1024))
        echo_clock.advance(FRAGMENT_GAP)
    writer.close()
    assert pieces == expected
    assert server.stats.faults[Fault.FRAGMENT] == 2


# -- drop, reset, close-after, stall --------------------------------------------------


@pytest.mark.echo_server(drop=1.0)
async def test_dropped_lines_get_no_reply(echo_server: EchoServer) -> None:
    assert await exchange(echo_server.addresses[0], b"one\ntwo\n") == b""
    stats = echo_server.stats
    assert stats.faults[Fault.DROP] == 2
    assert stats.messages_answered == 0
    assert stats.connections_rejected == dict.fromkeys(CloseReason, 0)


@pytest.mark.echo_server(reset=1.0)
async def test_a_reset_reads_as_econnreset(echo_server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write(b"hello\n")
    with pytest.raises(ConnectionResetError) as raised:
        await reader.read()
    assert raised.value.errno == errno.ECONNRESET
    writer.close()
    await until(lambda: echo_server.stats.connections_active == 0)
    assert echo_server.stats.faults[Fault.RESET] == 1
    assert echo_server.stats.bytes_sent == 0


@pytest.mark.echo_server(reset=0.5, seed=5)
async def test_the_replies_before_a_reset_are_sent(echo_server: EchoServer) -> None:
    plan = FaultPlan(reset=0.5, seed=5)
    rng = next(plan.generators())
    answered = 0
    while plan.verdict(rng) is Verdict.ANSWER:
        answered += 1
    sock = socket.create_connection(echo_server.addresses[0])
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, b"".join(b"%d\n" % n for n in range(answered + 5)))
    received = b""

    async def read_until_reset() -> None:
        nonlocal received
        while chunk := await loop.sock_recv(sock, 1024):
            received += chunk

    with pytest.raises(ConnectionResetError):
        await read_until_reset()
    sock.close()
    # A reset may overtake replies still in flight; none may come after it.
    assert b"".join(b"%d_SB\n" % n for n in range(answered)).startswith(received)


@pytest.mark.echo_server(close_after=10)
async def test_close_after_ends_the_connection_at_the_byte_limit(echo_server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*echo_server.addresses[0])
    writer.write(b"hello\nworld\n")
    assert await read_to_end(reader) == b"HELLO_SB\nW"
    writer.close()
    await until(lambda: echo_server.stats.connections_active == 0)
    assert echo_server.stats.bytes_sent == 10
    assert echo_server.stats.faults[Fault.CLOSE_AFTER] == 1


@pytest.fixture
async def stalling_server(clock: EchoClock) -> AsyncIterator[EchoServer]:
    """Answers one line per connection, then stalls; its idle timeout follows ``clock``."""
    config = ServerConfig(port=0, stall_after=1, idle_timeout=300, line_timeout=0)
    async with EchoServer(config, clock=clock) as server:
        yield server


@pytest.fixture
def clock() -> EchoClock:
    return EchoClock()


async def test_a_stalled_connection_stops_reading_until_its_idle_timeout(
    stalling_server: EchoServer, clock: EchoClock
) -> None:
    server = stalling_server
    address = server.addresses[0]
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"one\ntwo\n")
    assert await reader.readline() == b"ONE_SB\n"
    assert server.stats.faults[Fault.STALL_AFTER] == 1
    writer.write(b"three\n")
    server.clear_faults()  # for connections accepted from now on
    async with await aioecho.connect(*address) as other:
        assert await other.request("fine") == b"FINE_SB"
    # The stalled connection read nothing more while the other was served.
    await until(lambda: server.stats.connections_active == 1)
    stats = server.stats
    assert (stats.bytes_received, stats.messages_answered) == (8 + 5, 1 + 1)
    server.check_timeouts()  # the sweep that sees its last read
    clock.advance(300)
    server.check_timeouts()
    assert await read_to_end(reader) == b"ERR idle timeout\n"
    writer.close()
    assert server.stats.connections_rejected[CloseReason.IDLE_TIMEOUT] == 1


@pytest.fixture
async def delaying_server(clock: EchoClock) -> AsyncIterator[EchoServer]:
    """Delays every reply by five minutes of ``clock``'s time."""
    async with EchoServer(ServerConfig(port=0, delay="5m"), clock=clock) as server:
        yield server


async def test_the_server_clock_moves_a_delay_with_no_real_waiting(
    delaying_server: EchoServer, clock: EchoClock
) -> None:
    reader, writer = await asyncio.open_connection(*delaying_server.addresses[0])
    writer.write(b"late\n")
    held = held_cost(b"LATE_SB\n")
    await until(lambda: delaying_server.stats.bytes_buffered == held)
    clock.advance(299)
    delaying_server.check_timeouts()  # writes what is due by the clock, here nothing
    assert (delaying_server.stats.bytes_sent, delaying_server.stats.bytes_buffered) == (0, held)
    clock.advance(1)
    delaying_server.check_timeouts()
    assert (delaying_server.stats.bytes_sent, delaying_server.stats.bytes_buffered) == (
        len(b"LATE_SB\n"),
        0,
    )
    assert await reader.readline() == b"LATE_SB\n"
    writer.close()


async def test_shutdown_closes_a_stalled_connection(stalling_server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*stalling_server.addresses[0])
    writer.write(b"one\ntwo\nthree\n")
    assert await reader.readline() == b"ONE_SB\n"
    await stalling_server.shutdown(timeout=30)
    assert stalling_server.stats.connections_active == 0
    assert await read_to_end(reader) == b""
    writer.close()


# -- seeds ------------------------------------------------------------------------------

LINES = [b"line %d\n" % n for n in range(60)]


def expected_survivors(plan: FaultPlan, rng: random.Random) -> bytes:
    """The replies a connection drawing from ``rng`` gets under ``plan``, as the server draws."""
    kept = []
    for line in LINES:
        if plan.verdict(rng) is Verdict.ANSWER:
            plan.delay(rng)
            kept.append(line.upper().replace(b"\n", b"_SB\n"))
    return b"".join(kept)


@pytest.mark.echo_server(drop=0.5, delay="1ms:30", seed=42)
async def test_the_same_seed_and_input_give_the_same_faults(echo_server: EchoServer) -> None:
    address = echo_server.addresses[0]
    plan = echo_server.config.faults
    data = b"".join(LINES)
    first = await exchange(address, data)
    second = await exchange(address, data)  # the next connection has draws of its own
    echo_server.set_faults(seed=42)  # the seed's order of connections starts again
    # The same lines cut up differently by TCP: the same faults.
    again = await exchange(address, data[:7], data[7:200], data[200:])
    generators = plan.generators()
    assert first == again == expected_survivors(plan, next(generators))
    assert second == expected_survivors(plan, next(generators)) != first
    assert 0 < first.count(b"\n") < len(LINES)
    dropped = 3 * len(LINES) - 2 * first.count(b"\n") - second.count(b"\n")
    assert echo_server.stats.faults[Fault.DROP] == dropped
    echo_server.set_faults(seed=43)
    assert await exchange(address, data) != first


# -- runtime changes and counters ------------------------------------------------------


async def test_set_faults_applies_to_connections_accepted_afterwards(
    echo_server: EchoServer,
) -> None:
    address = echo_server.addresses[0]
    async with await aioecho.connect(*address) as before:
        assert await before.request("a") == b"A_SB"
        echo_server.set_faults(reset=1.0)
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"b\n")
        with pytest.raises(ConnectionResetError):
            await reader.read()
        writer.close()
        assert await before.request("still answered") == b"STILL ANSWERED_SB"
    echo_server.set_faults(reset=0)
    async with await aioecho.connect(*address) as after:
        assert await after.request("c") == b"C_SB"
    assert echo_server.stats.faults[Fault.RESET] == 1


async def test_set_faults_refuses_bad_values_and_other_options(echo_server: EchoServer) -> None:
    with pytest.raises(ConfigError, match="drop"):
        echo_server.set_faults(drop=2)
    with pytest.raises(ConfigError, match="not a fault: suffix"):
        echo_server.set_faults(suffix="")
    assert not echo_server.config.faults.active
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        assert await client.request("unchanged") == b"UNCHANGED_SB"


@pytest.mark.echo_server(metrics_port=0, drop=1.0)
async def test_faults_are_counted_in_the_metrics(echo_server: EchoServer) -> None:
    assert await exchange(echo_server.addresses[0], b"x\ny\nz\n") == b""
    values = samples((await http_get(echo_server.metrics_addresses[0], "/metrics"))[1])
    assert values[("aioecho_faults_total", (("fault", "drop"),))] == 3
    assert values[("aioecho_faults_total", (("fault", "reset"),))] == 0
    assert "faults=[drop=3]" in echo_server.stats.summary()
