"""Where a latency is the client's own, or a stall hides behind good
percentiles, the result says so: send lag apart from server time, unsent
messages counted at their age, stalls flagged, every connect timed, the
timeline filed where the time was lost, and a JSON that keeps and merges.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from aioecho import EchoServer
from aioecho.bench import BenchResult, run_async, to_json, to_table
from aioecho.bench.histogram import Histogram, LatencyRecorder
from aioecho.bench.result import merge_latency

from .test_bench import LineServer, StallingServer, bench_config, port_of, serve, upper_sb
from .test_bench_accounting import Silenced

PERCENTILES = ("p50", "p90", "p95", "p99", "p999", "p9999", "max")


def assert_valid(result: BenchResult) -> None:
    schema = json.loads(resources.files("aioecho.bench").joinpath("result.schema.json").read_text())
    jsonschema.validate(json.loads(to_json(result)), schema)


class SlowServer:
    """Answers each line ``DELAY`` seconds after it came, one line at a time per
    connection, and reads nothing more meanwhile: a server that keeps up
    with a fraction of the load."""

    DELAY = 0.02

    def protocol(self) -> asyncio.Protocol:
        delay = self.DELAY

        class Slow(LineServer):
            def data_received(self, data: bytes) -> None:
                self.transport.pause_reading()
                *lines, self.buffer = (self.buffer + data).split(b"\n")
                loop = asyncio.get_running_loop()
                loop.call_later(delay * max(1, len(lines)), self.answer, lines)

            def answer(self, lines: list[bytes]) -> None:
                if not self.transport.is_closing():
                    self.transport.write(b"".join(upper_sb(line) for line in lines))
                    self.transport.resume_reading()

        return Slow(upper_sb)


# -- open loop: send lag apart from the server's time ------------------------------


async def test_open_loop_reports_send_lag_beside_both_latencies(echo_server: EchoServer) -> None:
    result = await run_async(
        bench_config(port_of(echo_server), connections=5, rate=2000, duration=0.3)
    )
    assert result.ok, to_table(result)
    assert result.send_lag_us is not None
    assert result.uncorrected_latency_us is not None
    assert result.pacer_precise  # Linux: the pacer wakes on a timerfd
    # Each message's latency from due is its latency from the write plus its
    # send lag: no percentile of the first can be below the second's.
    for key in PERCENTILES:
        assert result.latency_us[key] >= result.uncorrected_latency_us[key], key  # type: ignore[operator]
    table = to_table(result)
    assert "send lag" in table
    assert "from the write" in table


async def test_closed_loop_has_one_latency() -> None:
    async with await serve(lambda: LineServer(upper_sb)) as server:
        result = await run_async(bench_config(port_of(server), connections=3))
    assert result.ok, to_table(result)
    assert result.send_lag_us is None
    assert result.uncorrected_latency_us is None


# -- honest verdicts ------------------------------------------------------------------


async def test_a_run_behind_its_rate_fails_and_its_late_messages_count() -> None:
    # 2 connections, one request in flight each, 20 ms a reply: at most 100
    # msg/s get out of the 400 asked; the rest wait and go out after the
    # window, each timed from when it was due.
    async with await serve(SlowServer().protocol) as server:
        config = bench_config(
            port_of(server), connections=2, pipeline=1, rate=400, duration=0.3, warmup=0
        )
        result = await run_async(config)
    assert result.due is not None
    assert result.behind is not None
    assert result.behind > 0.5, to_table(result)
    assert result.sent_after_window is not None
    assert result.sent_after_window > result.due / 2
    assert not result.ok
    assert "(BEHIND)" in to_table(result).splitlines()[-1]
    assert result.latency().count == result.answered + (result.unsent or 0)
    # The last of them waited for every reply before it: far beyond the window.
    assert result.latency_us["max"] is not None
    assert result.latency_us["max"] >= 0.3 * 1_000_000
    assert result.uncorrected_latency_us is not None
    assert result.uncorrected_latency_us["max"] is not None
    assert result.uncorrected_latency_us["max"] < 0.1 * 1_000_000  # each one took 20 ms


async def test_messages_never_sent_count_at_their_age() -> None:
    # A server that reads a little and then nothing: the rest stays owed
    # until the drain gives up, and counts with its age as latency.
    async with await serve(Silenced(answers=4).protocol) as server:
        config = bench_config(
            port_of(server), connections=1, pipeline=1, rate=200, duration=0.2, warmup=0,
            timeout=0.3,
        )  # fmt: skip
        result = await run_async(config)
    assert result.unsent, to_table(result)
    assert not result.ok
    assert "due messages never sent" in to_table(result).splitlines()[-1]
    assert result.latency().count == result.answered + result.unsent


async def test_a_closed_loop_stall_is_flagged() -> None:
    stalling = StallingServer()
    stalling.ARMED, stalling.STALL = 0.1, 0.25
    async with await serve(stalling.protocol) as server:
        # Time compressed: timeline "seconds" of 50 ms, a window of 10 of them.
        config = bench_config(port_of(server), connections=4, duration=0.5, warmup=0)
        result = await run_async(config, second=0.05)
    assert result.ok
    assert result.latency_us["p50"] is not None
    assert result.latency_us["p50"] < 100_000
    assert any(warning.startswith("stall: second") for warning in result.warnings), result
    assert to_table(result).splitlines()[-1] == "OK, with 1 warning (above)"


@pytest.mark.parametrize("filed_by", ["reply", "due"])
async def test_the_timeline_files_a_stall_where_asked(filed_by: str) -> None:
    stalling = StallingServer()
    stalling.ARMED, stalling.STALL = 0.1, 0.25
    async with await serve(stalling.protocol) as server:
        config = bench_config(
            port_of(server), connections=4, duration=0.5, warmup=0, timeline_by=filed_by
        )
        result = await run_async(config, second=0.05)
    seconds = result.timeline
    frozen = [s["second"] for s in seconds[:10] if s["round_trips"] == 0]
    assert frozen, seconds
    slowest = max(seconds, key=lambda s: s["max_us"] or 0)
    assert slowest["max_us"] >= 200_000, seconds
    if filed_by == "due":  # in the second the stalled requests were sent, before the gap
        assert slowest["second"] < frozen[0], seconds
    else:  # in the second their replies came, after it
        assert slowest["second"] > frozen[-1], seconds
    assert sum(s["round_trips"] for s in seconds) == result.messages


async def test_every_reconnect_is_timed() -> None:
    async with await serve(lambda: LineServer(upper_sb)) as server:
        config = bench_config(port_of(server), connections=1, churn=5, duration=0.3, warmup=0)
        result = await run_async(config)
    assert result.ok, to_table(result)
    assert result.connects > 10
    assert result.connect_latency_count == result.connects


async def test_server_memory_is_not_measured_on_a_server_the_harness_did_not_start(
    echo_server: EchoServer,
) -> None:
    result = await run_async(bench_config(port_of(echo_server), connections=3))
    assert result.server_bytes_per_connection is None
    assert "server not measured" in to_table(result)


# -- a JSON to keep -------------------------------------------------------------------


async def test_the_json_validates_and_says_where_it_came_from(echo_server: EchoServer) -> None:
    for options in ({}, {"rate": 1000}):
        result = await run_async(bench_config(port_of(echo_server), connections=3, **options))
        assert_valid(result)
        document = json.loads(to_json(result))
        assert document["schema_version"] == 2
        assert document["tool"]["name"] == "aioecho"
        assert document["machine"]["cpus"]
        assert document["latency_us"]["p95"] is not None


def test_the_schema_rejects_what_it_does_not_describe() -> None:
    schema = json.loads(resources.files("aioecho.bench").joinpath("result.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 2}, schema)


def recorded(values: list[int]) -> Histogram:
    """``values`` (µs) through the harness's own path: counts folded into HDR."""
    recorder = LatencyRecorder()
    for value in values:
        recorder.record(value * 1000)
    recorder.flush()
    return recorder.histogram


def as_json(histogram: Histogram) -> dict[str, Any]:
    return {"latency_histogram": histogram.encode().decode("ascii")}


def test_two_runs_merge_exactly_into_the_histogram_of_their_union() -> None:
    first = [17, 90, 90, 1_234, 65_537, 3_000_000]
    second = [1, 90, 2_047, 2_049, 123_456_789]
    merged = merge_latency([as_json(recorded(first)), as_json(recorded(second))])
    union = recorded(first + second)
    assert merged.count == union.count == len(first) + len(second)
    for percent in (0.1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100):
        assert merged.percentile(percent) == union.percentile(percent), percent
    assert merged.summary() == union.summary()


async def test_results_of_real_runs_merge(echo_server: EchoServer) -> None:
    runs = [await run_async(bench_config(port_of(echo_server), connections=2)) for _ in range(2)]
    merged = merge_latency([runs[0], json.loads(to_json(runs[1]))])
    assert merged.count == runs[0].messages + runs[1].messages
    assert merged.summary()["max"] == max(run.latency_us["max"] or 0 for run in runs)


# -- fairness -----------------------------------------------------------------------


class Unfair(LineServer):
    """Answers the connections it accepted second, fourth, ... ``DELAY`` late."""

    DELAY = 0.05
    accepted = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        Unfair.accepted += 1
        self.slow = Unfair.accepted % 2 == 0

    def data_received(self, data: bytes) -> None:
        if self.slow:
            asyncio.get_running_loop().call_later(self.DELAY, super().data_received, data)
        else:
            super().data_received(data)


class Holding(LineServer):
    """Holds the first connection's replies for ``HOLD`` seconds, once, after a while."""

    HOLD = 0.2
    first: Holding | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if Holding.first is None:
            Holding.first = self
            asyncio.get_running_loop().call_later(0.05, self._hold)

    def _hold(self) -> None:
        self.transport.pause_reading()
        asyncio.get_running_loop().call_later(self.HOLD, self.transport.resume_reading)


async def test_a_fair_server_scores_near_one() -> None:
    async with await serve(lambda: LineServer(upper_sb)) as server:
        result = await run_async(bench_config(port_of(server), connections=6, duration=0.3))
    figures = result.fairness
    assert figures["connections"] == 6
    assert figures["jain_index"] >= 0.95, figures
    assert figures["starved"] == 0
    assert sum(s["starved"] for s in result.timeline) == 0
    assert "Jain index" in to_table(result)


async def test_an_unfair_server_lowers_the_index_and_the_minimum() -> None:
    Unfair.accepted = 0
    async with await serve(lambda: Unfair(upper_sb)) as server:
        result = await run_async(bench_config(port_of(server), connections=6, duration=0.3))
    figures = result.fairness
    trips = figures["round_trips"]
    assert trips["min"] * 5 < trips["max"], figures  # 50 ms a reply against microseconds
    assert figures["jain_index"] < 0.7, figures
    assert figures["longest_gap_us"]["max"] >= 45_000, figures


async def test_a_connection_left_waiting_a_whole_second_is_starved() -> None:
    Holding.first = None
    async with await serve(lambda: Holding(upper_sb)) as server:
        # Time compressed: "seconds" of 50 ms; the hold covers three of them.
        config = bench_config(port_of(server), connections=3, duration=0.4, warmup=0)
        result = await run_async(config, second=0.05)
    figures = result.fairness
    assert figures["starved"] == 1, figures
    assert figures["longest_gap_us"]["max"] >= 150_000, figures
    starved = [s["starved"] for s in result.timeline]
    assert 2 <= sum(starved) <= 4, result.timeline  # one connection, 2-4 whole seconds
    assert max(starved) == 1
    assert result.ok


# -- idle connections ---------------------------------------------------------------


class ClosesTheSilent(LineServer):
    """Closes a connection that has not spoken ``AFTER`` seconds after it opened."""

    AFTER = 0.05

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.spoke = False
        asyncio.get_running_loop().call_later(self.AFTER, self._judge)

    def data_received(self, data: bytes) -> None:
        self.spoke = True
        super().data_received(data)

    def _judge(self) -> None:
        if not self.spoke:
            self.transport.close()


async def test_idle_connections_are_held_and_checked_alive(echo_server: EchoServer) -> None:
    result = await run_async(bench_config(port_of(echo_server), connections=3, idle=40))
    assert result.ok, to_table(result)
    assert (result.idle, result.idle_connected, result.idle_alive) == (40, 40, 40)
    assert result.connected == 3
    assert result.fairness["connections"] == 3  # the idle ones are not served, by design
    assert "idle: 40 of 40 held open, 40 alive" in to_table(result)
    assert_valid(result)


async def test_an_idle_connection_that_died_fails_the_run() -> None:
    async with await serve(lambda: ClosesTheSilent(upper_sb)) as server:
        config = bench_config(port_of(server), connections=2, idle=5, duration=0.2)
        result = await run_async(config)
    assert result.idle_alive == 0
    assert result.errors == 0  # the active ones spoke in time and stayed
    assert not result.ok
    assert "5 of 5 idle connections dead" in to_table(result).splitlines()[-1]
