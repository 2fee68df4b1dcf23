"""Repeated runs (``--repeat N``) and A/B comparisons (``--compare HOST:PORT``).

One run on a shared machine is one draw from a noisy distribution: the
figure worth quoting is the median of several, with an interval that says
how far it could be off. The interval is a bootstrap one (resample the
runs with replacement, take the median, keep the middle 95%), which assumes
nothing about the distribution; with few runs it is wide, honestly.

A comparison alternates A, B, A, B, ...: drift of the machine over the
session (other load, thermal state, caches) then falls on both sides alike
instead of on whichever ran second. Latencies of the runs of a side merge
exactly (their HDR histograms add), so a side's percentiles are those of
all its round trips.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .config import BenchConfig
from .histogram import Summary
from .provenance import SCHEMA_VERSION
from .result import BenchResult, merge_latency

RESAMPLES = 2000
CONFIDENCE = 0.95
# Resampling is seeded: the same runs give the same interval.
SEED = 862

RunOnce = Callable[[BenchConfig], BenchResult]


@dataclass(frozen=True)
class Estimate:
    """A median and its bootstrap interval."""

    median: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high}

    def __str__(self) -> str:
        return f"{self.median:,.6g} (95% interval {self.low:,.6g} to {self.high:,.6g})"


def bootstrap(values: Sequence[float], statistic: Callable[[Sequence[float]], float]) -> Estimate:
    """``statistic`` of ``values`` with its bootstrap interval."""
    draw = random.Random(SEED)
    samples = sorted(statistic(draw.choices(values, k=len(values))) for _ in range(RESAMPLES))
    tail = (1 - CONFIDENCE) / 2
    return Estimate(
        statistic(values),
        samples[int(tail * (RESAMPLES - 1))],
        samples[int((1 - tail) * (RESAMPLES - 1))],
    )


def ratio_of_medians(a: Sequence[float], b: Sequence[float]) -> Estimate | None:
    """median(b) / median(a), with the interval of resampling both sides."""
    if not a or not b or not statistics.median(a):
        return None
    draw = random.Random(SEED)
    samples = []
    for _ in range(RESAMPLES):
        base = statistics.median(draw.choices(a, k=len(a)))
        samples.append(statistics.median(draw.choices(b, k=len(b))) / base if base else 0.0)
    samples.sort()
    tail = (1 - CONFIDENCE) / 2
    return Estimate(
        statistics.median(b) / statistics.median(a),
        samples[int(tail * (RESAMPLES - 1))],
        samples[int((1 - tail) * (RESAMPLES - 1))],
    )


@dataclass(frozen=True)
class Repeated:
    """The runs of one target, and what they say together."""

    runs: list[BenchResult]

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    def rps(self) -> Estimate:
        return bootstrap([run.rps for run in self.runs], statistics.median)

    def p99(self) -> Estimate | None:
        values = [run.latency_us["p99"] for run in self.runs]
        known = [float(value) for value in values if value is not None]
        return bootstrap(known, statistics.median) if known else None

    def latency(self) -> Summary:
        """Percentiles of every round trip of every run."""
        return merge_latency(self.runs).summary()

    def summary(self) -> dict[str, Any]:
        """The figures of the runs together (what gates read)."""
        p99 = self.p99()
        cost = [run.client_cpu_us_per_rt for run in self.runs if run.client_cpu_us_per_rt]
        return {
            "target": self.runs[0].target,
            "runs": len(self.runs),
            "ok": self.ok,
            "rps": self.rps().median,
            "rps_estimate": self.rps().to_dict(),
            "p99_estimate": None if p99 is None else p99.to_dict(),
            "latency_us": self.latency(),
            "errors": sum(run.errors for run in self.runs),
            "timed_out": sum(run.timed_out for run in self.runs),
            "mismatches": sum(run.mismatches for run in self.runs),
            "unsent": sum(run.unsent or 0 for run in self.runs),
            "client_cpu_us_per_rt": statistics.median(cost) if cost else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "runs": [run.to_dict() for run in self.runs]}


def repeat(config: BenchConfig, times: int, run_once: RunOnce) -> Repeated:
    """``times`` runs of ``config``, one after another."""
    return Repeated([run_once(config) for _ in range(times)])


@dataclass(frozen=True)
class Comparison:
    """A and B measured alternately."""

    a: Repeated
    b: Repeated

    @property
    def ok(self) -> bool:
        return self.a.ok and self.b.ok

    def ratios(self) -> dict[str, Estimate | None]:
        """B's figures over A's: above 1, B has more throughput (or more latency)."""
        a, b = self.a.runs, self.b.runs
        return {
            "rps": ratio_of_medians([run.rps for run in a], [run.rps for run in b]),
            "p99": ratio_of_medians(_p99s(a), _p99s(b)),
        }


def _p99s(runs: list[BenchResult]) -> list[float]:
    return [float(run.latency_us["p99"] or 0) for run in runs]


def compare(a: BenchConfig, b: BenchConfig, times: int, run_once: RunOnce) -> Comparison:
    """``times`` runs of each, alternating A, B, A, B, ..."""
    runs: dict[str, list[BenchResult]] = {"a": [], "b": []}
    for _ in range(times):
        runs["a"].append(run_once(a))
        runs["b"].append(run_once(b))
    return Comparison(Repeated(runs["a"]), Repeated(runs["b"]))


def document(outcome: Repeated | Comparison) -> dict[str, Any]:
    """The JSON of repeated runs or of a comparison; gates read its ``summary``
    (for a comparison, A's)."""
    first = outcome.runs[0] if isinstance(outcome, Repeated) else outcome.a.runs[0]
    origin = {
        "schema_version": SCHEMA_VERSION,
        "tool": first.tool,
        "started_at": first.started_at,
        "machine": first.machine,
        "command": first.command,
    }
    if isinstance(outcome, Repeated):
        return {**origin, "kind": "repeat", **outcome.to_dict()}
    ratios = outcome.ratios()
    return {
        **origin,
        "kind": "compare",
        "summary": outcome.a.summary(),
        "a": outcome.a.to_dict(),
        "b": outcome.b.to_dict(),
        "ratio_b_to_a": {k: None if v is None else v.to_dict() for k, v in ratios.items()},
    }


def to_text(outcome: Repeated | Comparison) -> str:
    """One line per run, then each side's medians and intervals (and B/A)."""
    sides = {"": outcome} if isinstance(outcome, Repeated) else {"A ": outcome.a, "B ": outcome.b}
    lines = []
    for name, side in sides.items():
        for number, run in enumerate(side.runs, 1):
            p99 = run.latency_us["p99"]
            lines.append(
                f"{name}run {number}  {run.target}  {run.rps:>12,.0f} msg/s   "
                f"p99 {'-' if p99 is None else f'{p99:,}'} µs   {'ok' if run.ok else 'FAILED'}"
            )
    for name, side in sides.items():
        latency = side.latency()
        lines += [
            f"{name}{side.runs[0].target}: {len(side.runs)} runs, msg/s median {side.rps()}",
            f"{name}  p99 µs median of runs {side.p99()}; all round trips together: "
            f"p50 {latency['p50']} p99 {latency['p99']} max {latency['max']}",
        ]
    if isinstance(outcome, Comparison):
        for figure, ratio in outcome.ratios().items():
            lines.append(f"B/A {figure}: {'-' if ratio is None else ratio}")
    lines.append("OK" if outcome.ok else "FAILED: a run failed")
    return "\n".join(lines)
