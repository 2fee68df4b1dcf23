"""Presenting a result: a table for people, one JSON object for programs."""

from __future__ import annotations

import json

from .failures import describe
from .histogram import SUMMARY_KEYS, Summary
from .result import BenchResult

COLUMN_TITLES = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "p9999": "p99.99"}
COLUMN_WIDTH = 10
# Client processes this busy may be what limits the numbers, not the server.
SATURATED = 0.9


def to_json(result: BenchResult) -> str:
    """The result as one JSON object on one line."""
    return json.dumps(result.to_dict(), separators=(",", ":"))


def to_table(result: BenchResult) -> str:
    """A human summary: setup, throughput, latency percentiles, failures, verdict."""
    lines = [
        f"target      {result.target}" + (f"  ({result.server})" if result.server else ""),
        f"load        {_load(result)}",
        f"connected   {result.connected:,} of {result.connections:,}"
        + _reasons(result.connect_errors),
        f"measured    {result.duration_s:.2f} s after {result.warmup_s:g} s warm-up",
        f"messages    {result.messages:,} verified   "
        f"{result.rps:,.0f} msg/s   {result.bytes_per_s / 1e6:,.1f} MB/s",
        f"client cpu  {result.client_cpu:.0%} of a core per process" + _saturation(result),
        "",
        " " * 12 + "".join(COLUMN_TITLES.get(key, key).rjust(COLUMN_WIDTH) for key in SUMMARY_KEYS),
        _percentile_row("latency µs", result.latency_us),
        _percentile_row("connect µs", result.connect_latency_us),
        "",
        f"errors      {result.errors:,}" + _reasons(result.error_reasons),
        f"mismatches  {result.mismatches:,}",
    ]
    lines += [f"  {example}" for example in result.mismatch_examples]
    lines.append(verdict(result))
    return "\n".join(lines)


def verdict(result: BenchResult) -> str:
    """``OK``, or ``FAILED:`` and what went wrong."""
    if result.ok:
        return "OK"
    problems = []
    if result.mismatches:
        problems.append(f"{result.mismatches:,} wrong replies")
    if result.connected < result.connections:
        problems.append(f"{result.connections - result.connected:,} connections failed to open")
    if result.errors:
        problems.append(f"{result.errors:,} connections lost")
    if not result.messages:
        problems.append("no round trip completed while measuring")
    return "FAILED: " + ", ".join(problems)


def _load(result: BenchResult) -> str:
    if result.mode == "open":
        shape = f"open loop at {result.rate:,g} msg/s"
        in_flight = "unlimited" if result.pipeline is None else str(result.pipeline)
    else:
        shape, in_flight = "closed loop", str(result.pipeline)
    processes = f"{result.processes} process{'es' if result.processes > 1 else ''}"
    return (
        f"{shape}, {result.size}-byte lines, {in_flight} in flight per connection, "
        f"expect {result.expect}, {processes} on {result.loop}"
    )


def _saturation(result: BenchResult) -> str:
    if result.client_cpu < SATURATED:
        return ""
    return "  (saturated: the client may be the bottleneck; try more --processes)"


def _reasons(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return "  (" + ", ".join(f"{count:,} {describe(reason)}" for reason, count in ranked) + ")"


def _percentile_row(title: str, summary: Summary) -> str:
    cells = ("-" if summary[key] is None else f"{summary[key]:,}" for key in SUMMARY_KEYS)
    return title.ljust(12) + "".join(cell.rjust(COLUMN_WIDTH) for cell in cells)
