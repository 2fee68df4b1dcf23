"""Every request accounted for, against servers that misbehave on real sockets.

A server that stops answering, drops a reply, swaps replies between
connections, answers twice or answers what was never asked must each fail
the run and be named for what it did; on a right server every request sent
in the window is answered.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

import pytest

from aioecho import EchoServer
from aioecho.bench import BenchConfig, BenchResult, run_async

from .support import until
from .test_bench import LineServer, bench_config, drop_suffix, port_of, serve, upper_sb


def assert_accounted(result: BenchResult) -> None:
    """The books balance: each request sent in the window ended one way."""
    assert result.sent == result.answered + result.timed_out + result.unanswered, result
    assert result.answered == result.messages
    if result.mode == "open":
        assert result.due is not None
        assert result.unsent is not None
        assert result.due == result.sent + result.unsent, result


class Silenced:
    """Answers ``answers`` lines in all, then reads on and never answers again."""

    def __init__(self, answers: int) -> None:
        self.left = answers

    def protocol(self) -> asyncio.Protocol:
        outer = self

        class Quiet(LineServer):
            def data_received(self, data: bytes) -> None:
                *lines, self.buffer = (self.buffer + data).split(b"\n")
                replies = []
                for line in lines:
                    if outer.left > 0:
                        outer.left -= 1
                        replies.append(upper_sb(line))
                self.transport.write(b"".join(replies))

        return Quiet(upper_sb)


class Numbered(LineServer):
    """Counts a connection's lines; :meth:`answer` says what the n-th one gets."""

    def __init__(self) -> None:
        super().__init__(upper_sb)
        self.seen = 0

    def data_received(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        replies = []
        for line in lines:
            self.seen += 1
            replies.append(self.answer(line, self.seen))
        self.transport.write(b"".join(replies))

    def answer(self, line: bytes, number: int) -> bytes:
        return upper_sb(line)


class DropEvery(Numbered):
    """Leaves every ``N``-th line of a connection unanswered."""

    N = 7

    def answer(self, line: bytes, number: int) -> bytes:
        return upper_sb(line) if number % self.N else b""


class Swapper:
    """Sends each reply down the connection whose line came just before or after."""

    def __init__(self) -> None:
        self.waiting: tuple[asyncio.Transport, bytes] | None = None

    def protocol(self) -> asyncio.Protocol:
        outer = self

        class Swapping(LineServer):
            def data_received(self, data: bytes) -> None:
                *lines, self.buffer = (self.buffer + data).split(b"\n")
                for line in lines:
                    outer.route(self.transport, upper_sb(line))

        return Swapping(upper_sb)

    def route(self, transport: asyncio.Transport, reply: bytes) -> None:
        if self.waiting is None or self.waiting[0] is transport:
            self.waiting = (transport, reply)
            return
        other, other_reply = self.waiting
        self.waiting = None
        other.write(reply)
        transport.write(other_reply)


class Repeater(Numbered):
    """Answers a connection's third line twice."""

    def answer(self, line: bytes, number: int) -> bytes:
        return upper_sb(line) * (2 if number == 3 else 1)


class Prophet(Numbered):
    """After a connection's third line, also answers the request that will follow it."""

    def answer(self, line: bytes, number: int) -> bytes:
        extra = upper_sb(next_request(line)) if number == 3 else b""
        return upper_sb(line) + extra


def next_request(line: bytes) -> bytes:
    """The request after ``line`` on its connection: the sequence number plus one."""
    match = re.match(rb"(\d+):(\d+)", line)
    assert match is not None, line
    number = b"%0*d" % (len(match.group(2)), int(match.group(2)) + 1)
    return line[: match.start(2)] + number + line[match.end(2) :]


# -- a right server ------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"pipeline": 8}, {"rate": 2000}])
async def test_a_right_server_answers_every_request_sent(
    echo_server: EchoServer, options: dict[str, Any]
) -> None:
    result = await run_async(bench_config(port_of(echo_server), **options))
    assert result.ok, result
    assert result.timed_out == result.unanswered == 0
    assert result.sent == result.answered == result.messages > 0
    assert_accounted(result)
    assert result.mismatch_kinds == {}
    assert result.unique_requests


async def test_the_window_is_exactly_the_duration(echo_server: EchoServer) -> None:
    result = await run_async(bench_config(port_of(echo_server), duration=0.15))
    assert result.duration_s == 0.15  # fixed on the clock, not by when a timer ran


async def test_open_loop_due_follows_the_schedule_not_the_replies(echo_server: EchoServer) -> None:
    result = await run_async(
        bench_config(port_of(echo_server), rate=1000, duration=0.2, warmup=0.05)
    )
    assert result.ok, result
    assert result.due is not None
    assert abs(result.due - 200) <= 1  # 1,000 msg/s over exactly 0.2 s
    assert_accounted(result)


# -- servers that stop answering ---------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"rate": 400}])
async def test_a_server_that_stops_answering_times_out(options: dict[str, Any]) -> None:
    # At 400 msg/s the 40 answers last 0.1 s: the window goes on past them.
    silenced = Silenced(answers=40)
    async with await serve(silenced.protocol) as server:
        config = bench_config(port_of(server), warmup=0, duration=0.2, timeout=0.1, **options)
        result = await run_async(config)
    assert not result.ok
    assert result.timed_out > 0
    assert result.error_reasons.get("reply_timeout", 0) > 0
    assert result.mismatches == 0
    assert_accounted(result)


async def test_a_dropped_reply_stalls_a_closed_loop_until_it_times_out() -> None:
    async with await serve(DropEvery) as server:
        config = bench_config(port_of(server), connections=5, warmup=0, timeout=0.1)
        result = await run_async(config)
    assert not result.ok
    assert result.timed_out == 5  # each connection's 7th request
    assert result.answered == 5 * 6
    assert_accounted(result)


@pytest.mark.parametrize("options", [{"pipeline": 4}, {"rate": 1000}])
async def test_a_dropped_reply_is_named_when_the_next_one_comes(options: dict[str, Any]) -> None:
    async with await serve(DropEvery) as server:
        result = await run_async(bench_config(port_of(server), connections=5, **options))
    assert not result.ok
    assert result.mismatch_kinds == {"dropped": 5}
    assert "(dropped)" in result.mismatch_examples[0]
    assert_accounted(result)


# -- servers that answer wrongly ------------------------------------------------


async def test_swapped_replies_are_caught_and_named() -> None:
    swapper = Swapper()
    async with await serve(swapper.protocol) as server:
        result = await run_async(bench_config(port_of(server), connections=30))
    assert not result.ok
    assert result.mismatches >= 2
    assert set(result.mismatch_kinds) == {"swapped"}
    assert_accounted(result)


async def test_a_duplicate_reply_is_caught_and_named() -> None:
    async with await serve(Repeater) as server:
        result = await run_async(bench_config(port_of(server), connections=4))
    assert result.mismatch_kinds == {"duplicate": 4}
    assert not result.ok


async def test_a_reply_to_no_request_is_an_extra() -> None:
    async with await serve(Prophet) as server:
        result = await run_async(bench_config(port_of(server), connections=4))
    assert result.mismatch_kinds == {"extra": 4}
    assert not result.ok


async def test_a_corrupted_reply_is_wrong() -> None:
    async with await serve(lambda: LineServer(drop_suffix)) as server:
        result = await run_async(bench_config(port_of(server), connections=3))
    assert result.mismatch_kinds == {"wrong": 3}


# -- the client's own limits -------------------------------------------------------


async def test_a_blocked_client_loop_is_reported_as_the_limit(echo_server: EchoServer) -> None:
    async def block_while_measuring() -> None:
        # Without a warmup, the run measures once replies flow. A block at a
        # fixed time could come while a loaded machine is still connecting,
        # before the probe rings. It rings every millisecond: a 0.25 s block
        # holds up 250 rings.
        await until(lambda: echo_server.stats.messages_answered > 0)
        asyncio.get_running_loop().call_soon(time.sleep, 0.25)

    blocking = asyncio.create_task(block_while_measuring())
    result = await run_async(bench_config(port_of(echo_server), warmup=0, duration=0.45))
    await blocking
    lag = result.loop_lag_us["max"]
    assert lag is not None
    assert lag >= 200_000, result.loop_lag_us
    assert any("loop lag" in reason for reason in result.client_limits), result.client_limits
    assert result.client_bound


async def test_source_addresses_are_reported(echo_server: EchoServer) -> None:
    result = await run_async(bench_config(port_of(echo_server), connections=7))
    assert result.source_addresses == {"127.0.0.1": 7}


# -- shapes: churn, ramp, timeline ------------------------------------------------


async def test_churn_reconnects_every_n_requests() -> None:
    per_connection: Counter[int] = Counter()
    connections: list[int] = []

    class Counting(LineServer):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.number = len(connections)
            connections.append(self.number)

        def data_received(self, data: bytes) -> None:
            per_connection[self.number] += data.count(b"\n")
            super().data_received(data)

    async with await serve(lambda: Counting(upper_sb)) as server:
        # Only the message count ends the run: the default 0.1 s window could
        # close first on a loaded machine, before every reconnect was made.
        config = bench_config(
            port_of(server), connections=4, churn=5, warmup=0, messages=60, duration=None
        )
        result = await run_async(config)
    assert result.ok, result
    assert result.messages == 60
    assert max(per_connection.values()) <= 5
    assert len(connections) >= 12  # 60 requests, at most 5 each
    assert sum(second["connects"] for second in result.timeline) >= 8


async def test_a_ramp_schedules_the_area_under_the_rate(echo_server: EchoServer) -> None:
    config = bench_config(
        port_of(echo_server), rate=200, rate_to=2000, ramp=0.2, duration=0.2, warmup=0.05
    )
    result = await run_async(config)
    assert result.ok, result
    assert result.due is not None
    assert abs(result.due - (200 + 2000) / 2 * 0.2) <= 1
    assert (result.rate, result.rate_to, result.ramp_s) == (200, 2000, 0.2)
    assert_accounted(result)


async def test_the_timeline_has_a_second_per_second_and_adds_up(echo_server: EchoServer) -> None:
    # Time compressed: a timeline "second" of 0.25 s, a window of 1.2 of them.
    # The replies drained after the window have 0.2 s to come before they
    # would open a third.
    config = bench_config(port_of(echo_server), connections=5, duration=0.3)
    result = await run_async(config, second=0.25)
    assert result.ok, result
    assert [second["second"] for second in result.timeline] == [0, 1]
    assert sum(second["round_trips"] for second in result.timeline) == result.messages
    assert all(second["errors"] == 0 for second in result.timeline)
    assert result.timeline[0]["connections"] == 5
    first = result.timeline[0]
    assert first["p50_us"] is not None
    assert first["p99_us"] is not None
    assert first["p50_us"] <= first["p99_us"]


def test_churn_and_ramps_are_checked() -> None:
    for options in ({"churn": 0}, {"churn": 3, "rate": 10}, {"rate_to": 5}, {"timeout": 0}):
        with pytest.raises(ValueError, match=r"."):
            BenchConfig(**options)
