"""Repeats with intervals, A/B comparisons that alternate, and the gates CI
uses: each from its parts, and end to end from the command line."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from aioecho.bench import BenchConfig, BenchConfigError, BenchResult
from aioecho.bench.gates import Gate, parse_regression, regressions
from aioecho.bench.repeats import bootstrap, compare, ratio_of_medians, repeat

from .support import ChildServer
from .test_bench_cli import bench, target_of
from .test_bench_shapes import result_at

SHORT = ("--connections", "3", "--duration", "0.1", "--warmup", "0")


def schema() -> dict[str, object]:
    text = resources.files("aioecho.bench").joinpath("result.schema.json").read_text()
    loaded: dict[str, object] = json.loads(text)
    return loaded


# -- the parts ------------------------------------------------------------------------


def test_a_gate_reads_durations_for_latency_and_numbers_for_the_rest() -> None:
    figures = {"p99": 7_200.0, "rps": 9_000.0, "errors": 0.0}
    assert Gate.parse("p99>5ms").failure(figures) == "p99>5ms: p99 was 7.2 ms"
    assert Gate.parse("p99 > 10ms").failure(figures) is None
    assert Gate.parse("rps<10000").failure(figures) == "rps<10000: rps was 9,000"
    assert Gate.parse("errors>0").failure(figures) is None
    assert Gate.parse("p9999>=1s").failure({}) == "p9999>=1s: p9999 was not measured"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("p99", "write FIGURE OP VALUE"),
        ("p98>1ms", "p98 is not one of"),
        ("p99>fast", "not a duration"),
        ("rps<many", "could not convert"),
    ],
)
def test_a_wrong_gate_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(BenchConfigError, match=says):
        Gate.parse(text)


def test_a_regression_beyond_the_allowance_is_named() -> None:
    before = {"rps": 10_000.0, "p99": 1_000.0}
    assert regressions({"rps": 9_500.0, "p99": 1_050.0}, before, parse_regression("10%")) == []
    [fell] = regressions({"rps": 8_000.0, "p99": 1_000.0}, before, 0.1)
    assert fell.startswith("rps 10,000 -> 8,000 (-20.0%")
    [rose] = regressions({"rps": 10_000.0, "p99": 1_500.0}, before, 0.1)
    assert rose.startswith("p99 1 ms -> 1.5 ms (+50.0%")


def test_the_bootstrap_interval_holds_the_median_and_repeats() -> None:
    values = [100.0, 104.0, 98.0, 130.0, 101.0]
    estimate = bootstrap(values, lambda sample: sorted(sample)[len(sample) // 2])
    assert estimate.median == 101.0
    assert estimate.low <= 101.0 <= estimate.high
    assert estimate.low >= 98.0
    assert estimate.high <= 130.0
    assert bootstrap(values, lambda s: sorted(s)[len(s) // 2]) == estimate  # seeded
    ratio = ratio_of_medians([100.0, 100.0, 100.0], [150.0, 150.0, 150.0])
    assert ratio is not None
    assert (ratio.median, ratio.low, ratio.high) == (1.5, 1.5, 1.5)


def test_a_comparison_alternates_the_sides() -> None:
    order: list[int | None] = []

    def run_once(config: BenchConfig) -> BenchResult:
        order.append(config.port)
        return result_at(1000.0 * (config.port or 1), 1_000)

    a = BenchConfig(host="127.0.0.1", port=1)
    b = BenchConfig(host="127.0.0.1", port=2)
    outcome = compare(a, b, 3, run_once)
    assert order == [1, 2, 1, 2, 1, 2]
    rps = outcome.ratios()["rps"]
    assert rps is not None
    assert rps.median == 2.0
    assert len(repeat(a, 4, run_once).runs) == 4


# -- end to end -----------------------------------------------------------------------


def test_repeats_report_medians_and_validate(echo_process: ChildServer) -> None:
    done = bench(*target_of(echo_process), *SHORT, "--repeat", "2", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, schema())
    assert document["kind"] == "repeat"
    assert len(document["runs"]) == 2
    total = sum(run["messages"] for run in document["runs"])
    assert document["summary"]["latency_us"]["max"] == max(
        run["latency_us"]["max"] for run in document["runs"]
    )
    assert total > 0


def test_a_comparison_from_the_command_line(echo_process: ChildServer) -> None:
    other = f"{echo_process.host}:{echo_process.port}"
    done = bench(*target_of(echo_process), *SHORT, "--compare", other, "--repeat", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:3] for line in lines[:4]] == [
        ["A", "run", "1"], ["A", "run", "2"], ["B", "run", "1"], ["B", "run", "2"],
    ]  # fmt: skip
    assert any(line.startswith("B/A rps: ") for line in lines)


def test_gates_fail_the_command(echo_process: ChildServer, tmp_path: Path) -> None:
    target = target_of(echo_process)
    assert bench(*target, *SHORT, "--fail-if", "p99>1m").returncode == 0
    done = bench(*target, *SHORT, "--fail-if", "p99<1m", "--fail-if", "errors>0")
    assert done.returncode == 1
    assert re.search(r"^gate failed: p99<1m: p99 was [0-9.]+ ms$", done.stdout, re.M)
    saved = json.loads(bench(*target, *SHORT, "--json").stdout)
    saved["rps"] *= 100  # a baseline no run on this machine reaches
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(saved))
    done = bench(*target, *SHORT, "--baseline", str(baseline), "--max-regression", "10%")
    assert done.returncode == 1
    assert "more than the allowed 10%" in done.stdout


@pytest.mark.parametrize(
    "flags",
    [("--fail-if", "p99"), ("--repeat", "0"), ("--compare", "nowhere"), ("--baseline", "/nope")],
)
def test_wrong_flags_are_one_line(flags: tuple[str, ...], echo_process: ChildServer) -> None:
    done = bench(*target_of(echo_process), *SHORT, *flags)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) <= 2  # usage line and the error
    assert "Traceback" not in done.stderr
