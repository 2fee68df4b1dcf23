"""The pieces behind the load's shapes and exports, driven without a clock:
the open-loop schedule, the saturation search against a model target, the
per-second timeline, and the verdict on whether the client was the limit."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from aioecho.bench import BenchConfig, BenchResult
from aioecho.bench.pacer import NS_PER_S, Schedule
from aioecho.bench.result import client_limits
from aioecho.bench.search import SearchRefused, find_max_rate, judge, next_rate
from aioecho.bench.timeline import Timeline, merge_timelines

START = 10 * NS_PER_S


def test_a_constant_schedule_is_a_fixed_grid() -> None:
    schedule = Schedule(START, 4000)
    assert [schedule.due(j) - START for j in range(4)] == [0, 250_000, 500_000, 750_000]
    assert schedule.count_before(START + NS_PER_S) == 4000
    assert schedule.count_before(START + NS_PER_S + 1) == 4001


def test_a_ramp_is_due_along_the_area_under_the_rate() -> None:
    ramp_start = START + NS_PER_S
    schedule = Schedule(START, 1000, rate_to=3000, ramp_start=ramp_start, ramp_s=2.0)
    assert schedule.messages_by(ramp_start) == pytest.approx(1000)  # one second of warm-up
    assert schedule.messages_by(ramp_start + 2 * NS_PER_S) == pytest.approx(1000 + 4000)
    assert schedule.messages_by(ramp_start + 3 * NS_PER_S) == pytest.approx(5000 + 3000)
    assert schedule.rate_at(ramp_start + NS_PER_S) == pytest.approx(2000)
    for message in (0, 999, 1000, 1500, 4999, 5000, 7000):
        due = schedule.due(message)
        assert schedule.count_before(due) == message  # due(j) is where the j-th begins
        assert schedule.count_before(due + 1) == message + 1
    dues = [schedule.due(j) for j in range(0, 8000)]
    assert dues == sorted(dues)


def result_at(rate: float, p99_us: int, *, timed_out: int = 0, **changes: Any) -> BenchResult:
    """A result as a step at ``rate`` would report it."""
    result = BenchResult(
        target="model", server=None, mode="open", rate=rate, connections=10, connected=10,
        connect_errors={}, processes=1, loop="model", size=64, pipeline=None, warmup_s=0,
        duration_s=1.0, messages=int(rate), rps=rate, bytes_per_s=0, client_cpu=0.1,
        client_cpu_us_per_rt=None,
        latency_us={"p50": p99_us // 2, "p99": p99_us}, connect_latency_us={}, errors=0,
        error_reasons={}, mismatches=0, mismatch_examples=[], expect="upper-sb",
        sent=int(rate), answered=int(rate) - timed_out, timed_out=timed_out,
        due=int(rate), unsent=0, sent_rate=rate,
    )  # fmt: skip
    return dataclasses.replace(result, **changes)


def model_target(knee: float) -> tuple[list[float], Callable[[BenchConfig], BenchResult]]:
    """A target whose p99 is 1 ms up to ``knee`` msg/s and 1 s beyond; timeouts past 2x."""
    asked: list[float] = []

    def measure(config: BenchConfig) -> BenchResult:
        assert config.rate is not None
        asked.append(config.rate)
        p99 = 1_000 if config.rate <= knee else 1_000_000
        return result_at(config.rate, p99, timed_out=int(config.rate > 2 * knee))

    return asked, measure


def test_the_search_doubles_then_bisects_to_within_five_percent() -> None:
    asked, measure = model_target(knee=10_000)
    config = BenchConfig(host="127.0.0.1", port=9, find_max_rate=0.010)
    result = find_max_rate(config, measure, stopped=lambda: False)
    assert asked[:6] == [200, 1000, 2000, 4000, 8000, 16000]  # the floor first
    # Bisection, then the last pass and the first failure once more each.
    assert asked[6:] == [12000, 10000, 11000, 10500, 10000, 10500]
    assert result.max_rate == 10_000
    assert result.bracket == [10_000, 10_500]
    assert result.search_limit == "server"
    assert result.rate == 10_000  # the result is the best passing step's
    assert [step["verdict"] for step in result.steps] == [
        "pass", "pass", "pass", "pass", "pass", "fail", "fail", "pass", "fail", "fail",
        "pass", "fail",
    ]  # fmt: skip
    assert "p99 1,000,000 µs over 10,000 µs" in result.steps[5]["why"]
    assert all(math.isclose(s["rate"], r) for s, r in zip(result.steps, asked, strict=True))


def test_a_pass_that_does_not_repeat_moves_the_bracket_down() -> None:
    _asked, measure = model_target(knee=10_000)
    runs: Counter[float] = Counter()

    def lucky_once(config: BenchConfig) -> BenchResult:
        assert config.rate is not None
        runs[config.rate] += 1
        if config.rate == 10_500 and runs[config.rate] == 1:
            return result_at(config.rate, 1_000)  # passed once, by luck
        return measure(config)

    config = BenchConfig(host="127.0.0.1", port=9, find_max_rate=0.010)
    result = find_max_rate(config, lucky_once, stopped=lambda: False)
    assert runs[10_500] == 2
    assert result.max_rate == 10_000
    assert result.bracket == [10_000, 10_500]


def test_a_client_bound_step_is_inconclusive_not_a_failure() -> None:
    def client_bound_above(config: BenchConfig) -> BenchResult:
        assert config.rate is not None
        if config.rate <= 5000:
            return result_at(config.rate, 1_000)
        return result_at(config.rate, 30_000, client_cpu=0.97)

    config = BenchConfig(host="127.0.0.1", port=9, find_max_rate=0.010)
    result = find_max_rate(config, client_bound_above, stopped=lambda: False)
    verdicts = {step["rate"]: step["verdict"] for step in result.steps}
    assert verdicts[8000] == "inconclusive"
    assert "client's CPU was at 97%" in result.steps[5]["why"]
    assert "fail" not in verdicts.values()
    assert result.search_limit == "client"
    assert result.max_rate is not None
    assert 4750 <= result.max_rate <= 5000


def test_a_step_whose_latency_climbs_fails() -> None:
    seconds = [{"p50_us": p50} for p50 in (2000, 4200, 7700)]
    climbing = result_at(1000, 19_200, timeline=seconds, duration_s=3.0)
    assert judge(climbing, 20_000) == (
        "fail",
        "queue growing: p50 2,000 → 4,200 → 7,700 µs by second",
    )
    steady = result_at(1000, 19_200, timeline=seconds[:1] * 3, duration_s=3.0)
    assert judge(steady, 20_000) == ("pass", None)


def test_a_bound_below_the_floor_is_refused() -> None:
    _, measure = model_target(knee=10_000)
    config = BenchConfig(host="127.0.0.1", port=9, find_max_rate=0.0005)  # 500 µs < 1 ms
    with pytest.raises(SearchRefused, match=r"the floor here is p99 1,000 µs at 200 msg/s"):
        find_max_rate(config, measure, stopped=lambda: False)


def test_a_step_with_a_timeout_fails_even_under_the_bound() -> None:
    _, measure = model_target(knee=1_000_000)

    def with_timeouts(config: BenchConfig) -> BenchResult:
        result = measure(config)
        if config.rate and config.rate > 3000:
            return dataclasses.replace(result, timed_out=1)
        return result

    config = BenchConfig(host="127.0.0.1", port=9, find_max_rate=0.010, rate=1000)
    result = find_max_rate(config, with_timeouts, stopped=lambda: False)
    assert result.max_rate is not None
    assert 2000 <= result.max_rate <= 3000
    assert "timed out" in result.steps[3]["why"]


def test_the_search_stops_when_interrupted() -> None:
    asked, measure = model_target(knee=10_000)
    config = BenchConfig(host="127.0.0.1", port=9, find_max_rate=0.010)
    result = find_max_rate(config, measure, stopped=lambda: True)
    assert asked == [200]
    assert len(result.steps) == 1


def test_next_rate() -> None:
    assert next_rate(1000, None) == 2000
    assert next_rate(None, 1000) == 500
    assert next_rate(None, 15) is None  # below the floor
    assert next_rate(1000, 1040) is None  # within 5%
    assert next_rate(1000, 2000) == 1500


def test_the_timeline_merges_processes_second_by_second() -> None:
    timelines = []
    for offset in (0, 1000):
        timeline = Timeline(START)
        timeline.record(0, Counter({100: 9, 5000 + offset: 1}))
        timeline.advance(START + NS_PER_S, errors=2, connections=5, connects=5)
        timeline.record(1, Counter({200: 4}))
        timeline.finish(errors=3, connections=4, connects=6)
        timelines.append(timeline.seconds)
    merged = merge_timelines(timelines)
    assert [entry["second"] for entry in merged] == [0, 1]
    assert [entry["round_trips"] for entry in merged] == [20, 8]
    assert [entry["errors"] for entry in merged] == [4, 2]
    assert [entry["connections"] for entry in merged] == [10, 8]
    assert [entry["connects"] for entry in merged] == [10, 2]
    assert merged[0]["p50_us"] == pytest.approx(100, rel=0.05)
    assert merged[0]["p99_us"] == pytest.approx(6000, rel=0.05)
    assert merged[1]["p99_us"] == pytest.approx(200, rel=0.05)


def test_client_limits_name_cpu_and_loop_lag() -> None:
    calm = {"p99": 100}
    assert client_limits(0.5, calm, {"p99": 2000}, calm, {"p99": 500}) == []
    [cpu] = client_limits(0.95, calm, {"p99": 2000}, calm, {"p99": 500})
    assert "CPU at 95%" in cpu
    [lag] = client_limits(0.5, {"p99": 8000}, {"p99": 20_000}, calm, {"p99": 500})
    assert "lag p99 8.00 ms" in lag
    assert "held the cores" not in lag
    [starved] = client_limits(0.1, {"p99": 8000}, {"p99": 20_000}, calm, {"p99": 500})
    assert "at 10% CPU: other processes held the cores" in starved
    # A lag that is a small share of a large latency does not explain it.
    assert client_limits(0.5, {"p99": 8000}, {"p99": 900_000}, calm, {"p99": 500}) == []
    [connect] = client_limits(0.5, calm, {"p99": 2000}, {"p99": 20_000}, {"p99": 23_000})
    assert "while connecting" in connect


def test_a_late_pacer_names_the_client() -> None:
    calm = {"p99": 100}
    # Within the pacer's precision, or a small share of the latency: not the client.
    assert client_limits(0.5, calm, {"p99": 300}, calm, calm, {"p99": 90}) == []
    assert client_limits(0.5, calm, {"p99": 9000}, calm, calm, {"p99": 2000}) == []
    [late] = client_limits(0.5, calm, {"p99": 1200}, calm, calm, {"p99": 700})
    assert "send lag p99 0.70 ms against latency p99 1.20 ms" in late
