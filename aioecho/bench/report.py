"""Presenting a result: a table for people, one JSON object for programs."""

from __future__ import annotations

import json

from .failures import describe
from .histogram import SUMMARY_KEYS, Summary
from .result import BEHIND_LIMIT, BenchResult

COLUMN_TITLES = {"p999": "p99.9", "p9999": "p99.99"}
COLUMN_WIDTH = 10


def to_json(result: BenchResult) -> str:
    """The result as one JSON object on one line."""
    return json.dumps(result.to_dict(), separators=(",", ":"))


def to_table(result: BenchResult, *, timeline: bool = False) -> str:
    """A human summary: setup, throughput, latency percentiles, failures, verdict;
    with ``timeline``, a line per second of the window too."""
    lines = [
        f"target      {result.target}" + (f"  ({result.server})" if result.server else ""),
        f"load        {_load(result)}",
        f"connected   {result.connected:,} of {result.connections:,}"
        + _reasons(result.connect_errors)
        + _idle(result),
        f"measured    {result.duration_s:.2f} s after {result.warmup_s:g} s warm-up",
        f"messages    {result.messages:,} verified   "
        f"{result.rps:,.0f} msg/s   {result.bytes_per_s / 1e6:,.1f} MB/s",
        f"requests    {result.sent:,} sent = {result.answered:,} answered + "
        f"{result.timed_out:,} timed out (>{result.timeout_s:g} s) + "
        f"{result.unanswered:,} unanswered",
        *_schedule(result),
        f"connecting  {result.connect_s:.2f} s" + _memory(result),
        f"sources     {_sources(result.source_addresses)}",
        *_fairness(result),
        *_server_cpu(result),
        f"client cpu  {result.client_cpu:.0%} of a core per process, "
        f"{_us(result.client_cpu_us_per_rt)} µs per round trip   "
        f"hiccups (1 ms timer) p99 {_ms(result.loop_lag_us.get('p99'))} ms, "
        f"max {_ms(result.loop_lag_us.get('max'))} ms",
        *(f"  client-bound: {reason}" for reason in result.client_limits),
        "",
        " " * 12 + "".join(COLUMN_TITLES.get(key, key).rjust(COLUMN_WIDTH) for key in SUMMARY_KEYS),
        *_latency_rows(result),
        _percentile_row("connect µs", result.connect_latency_us),
        "",
        f"errors      {result.errors:,}" + _reasons(result.error_reasons),
        f"mismatches  {result.mismatches:,}" + _reasons(result.mismatch_kinds),
    ]
    lines += [f"  {example}" for example in result.mismatch_examples]
    if timeline:
        lines += _timeline(result)
    lines += _steps(result)
    lines += [f"warning     {warning}" for warning in result.warnings]
    lines.append(verdict(result))
    return "\n".join(lines)


def _latency_rows(result: BenchResult) -> list[str]:
    """Closed loop: one latency. Open loop: from due (what a user waits), from the
    write (what the server took), and the send lag between the two."""
    if result.send_lag_us is None or result.uncorrected_latency_us is None:
        return [_percentile_row("latency µs", result.latency_us)]
    return [
        _percentile_row("latency µs", result.latency_us) + "   from due",
        _percentile_row("  written", result.uncorrected_latency_us) + "   from the write",
        _percentile_row("send lag", result.send_lag_us) + "   due to written"
        + ("" if result.pacer_precise else " (loop timer: ~1 ms)"),
    ]  # fmt: skip


def verdict(result: BenchResult) -> str:
    """``OK``, or ``FAILED:`` and what went wrong."""
    if result.steps:
        return _search_verdict(result)
    if result.ok:
        if result.warnings:
            count = len(result.warnings)
            return f"OK, with {count} warning{'s' if count > 1 else ''} (above)"
        return "OK"
    problems = []
    if result.unsent:
        problems.append(f"{result.unsent:,} due messages never sent")
    if (result.behind or 0) > BEHIND_LIMIT:
        problems.append(f"{result.behind:.1%} of the due messages not sent in the window (BEHIND)")
    if result.timed_out:
        problems.append(f"{result.timed_out:,} requests timed out")
    if result.mismatches:
        problems.append(f"{result.mismatches:,} wrong replies")
    if result.connected < result.connections:
        problems.append(f"{result.connections - result.connected:,} connections failed to open")
    if result.errors:
        problems.append(f"{result.errors:,} connections lost")
    if result.idle_alive < result.idle:
        problems.append(
            f"{result.idle - result.idle_alive:,} of {result.idle:,} idle connections dead"
        )
    if not result.messages:
        problems.append("no round trip completed while measuring")
    return "FAILED: " + ", ".join(problems)


TIMELINE_COLUMNS = (
    ("second", "second"),
    ("round_trips", "round trips"),
    ("p50_us", "p50 µs"),
    ("p99_us", "p99 µs"),
    ("max_us", "max µs"),
    ("errors", "errors"),
    ("connections", "open"),
    ("connects", "connects"),
    ("starved", "starved"),
)


def _timeline(result: BenchResult) -> list[str]:
    """The window second by second (replies drained after it may add seconds)."""
    width = 12
    lines = ["", "".join(title.rjust(width) for _, title in TIMELINE_COLUMNS)]
    for second in result.timeline:
        cells = ("-" if second[key] is None else f"{second[key]:,}" for key, _ in TIMELINE_COLUMNS)
        lines.append("".join(cell.rjust(width) for cell in cells))
    return lines


def _search_verdict(result: BenchResult) -> str:
    low, high = result.bracket or (None, None)
    above = ""
    if high is not None:
        side = (
            "the client was the limit" if result.search_limit == "client" else "the server failed"
        )
        above = f"; at {high:,g} msg/s {side}"
    if result.max_rate is None:
        return "FAILED: no rate passed" + above
    return f"OK: max rate {result.max_rate:,g} msg/s (bracket [{low:,g}, {_rate(high)}]{above})"


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,g}"


def _load(result: BenchResult) -> str:
    if result.mode == "open":
        shape = f"open loop at {result.rate:,g} msg/s"
        if result.rate_to is not None:
            shape += f" ramping to {result.rate_to:,g} in {result.ramp_s:g} s"
        in_flight = "unlimited" if result.pipeline is None else str(result.pipeline)
    else:
        shape, in_flight = "closed loop", str(result.pipeline)
        if result.churn is not None:
            shape += f" reconnecting every {result.churn:,} requests"
    processes = f"{result.processes} process{'es' if result.processes > 1 else ''}"
    return (
        f"{shape}, {result.size}-byte lines, {in_flight} in flight per connection, "
        f"expect {result.expect}, {processes} on {result.loop}"
    )


def _schedule(result: BenchResult) -> list[str]:
    """Open loop: how well the pacer kept the schedule."""
    if result.due is None or result.sent_rate is None:
        return []
    asked = result.due / result.duration_s if result.duration_s else 0.0
    line = (
        f"schedule    {result.due:,} due, {result.sent_after_window or 0:,} sent after the "
        f"window, {result.unsent or 0:,} never; {result.late or 0:,} sent late (>10 ms)"
    )
    if (result.behind or 0) > BEHIND_LIMIT:
        line += f"  BEHIND the asked {asked:,.0f} msg/s by {(result.behind or 0):.1%}"
    return [line]


def _server_cpu(result: BenchResult) -> list[str]:
    if result.server_cpu_us_per_rt is None:
        return []
    return [f"server cpu  {result.server_cpu_us_per_rt:,.1f} µs per round trip (from /proc)"]


def _idle(result: BenchResult) -> str:
    if not result.idle:
        return ""
    return (
        f"   idle: {result.idle_connected:,} of {result.idle:,} held open, "
        f"{result.idle_alive:,} alive after the window"
    )


def _fairness(result: BenchResult) -> list[str]:
    """Round trips per connection, Jain's index, starved connections, longest gaps."""
    figures = result.fairness
    if not figures or not figures["connections"]:
        return []
    trips, gaps = figures["round_trips"], figures["longest_gap_us"]
    jain = figures["jain_index"]
    return [
        f"fairness    round trips per connection min {trips['min']:,}, p1 {trips['p1']:,}, "
        f"median {trips['median']:,}, max {trips['max']:,}   Jain index "
        + ("-" if jain is None else f"{jain:.4f}"),
        f"            {figures['starved']:,} starved (a whole second without a reply)   "
        f"longest gap between replies p99 {_ms(gaps['p99'])} ms, max {_ms(gaps['max'])} ms",
    ]


def _memory(result: BenchResult) -> str:
    """Memory per connection; the server's only where the harness started it."""
    parts = []
    for side, value in (
        ("client", result.client_bytes_per_connection),
        ("server", result.server_bytes_per_connection),
    ):
        parts.append(f"{side} " + ("not measured" if value is None else f"{value / 1024:,.1f} KiB"))
    return f"   memory per connection: {', '.join(parts)}"


def _sources(counts: dict[str, int]) -> str:
    if not counts:
        return "-"
    shown = ", ".join(f"{address} ({count:,})" for address, count in list(counts.items())[:4])
    more = len(counts) - 4
    plural = "es" if len(counts) > 1 else ""
    return f"{len(counts)} source address{plural}: {shown}" + (f", {more} more" if more > 0 else "")


def _steps(result: BenchResult) -> list[str]:
    """The saturation search, one line per step."""
    if not result.steps:
        return []
    lines = ["", "search      rate msg/s      sent/s         p99 µs   lag p99 µs  verdict"]
    for step in result.steps:
        p99 = "-" if step["p99_us"] is None else f"{step['p99_us']:,}"
        lag = "-" if step["send_lag_p99_us"] is None else f"{step['send_lag_p99_us']:,}"
        sent = "-" if step["sent_rate"] is None else f"{step['sent_rate']:,.0f}"
        why = "" if step["why"] is None else f": {step['why']}"
        lines.append(
            f"            {step['rate']:>10,g}  {sent:>10}  {p99:>13}  {lag:>11}  "
            f"{step['verdict']}{why}"
        )
    return lines


def _ms(value_us: int | None) -> str:
    return "-" if value_us is None else f"{value_us / 1000:,.1f}"


def _us(value_us: float | None) -> str:
    return "-" if value_us is None else f"{value_us:,.1f}"


def _reasons(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return "  (" + ", ".join(f"{count:,} {describe(reason)}" for reason, count in ranked) + ")"


def _percentile_row(title: str, summary: Summary) -> str:
    cells = ("-" if summary[key] is None else f"{summary[key]:,}" for key in SUMMARY_KEYS)
    return title.ljust(12) + "".join(cell.rjust(COLUMN_WIDTH) for cell in cells)
