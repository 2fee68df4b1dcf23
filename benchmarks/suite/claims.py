"""``python -m benchmarks matrix --claims``: each claim of the tutorial and of
uvloop, measured with the load that can show it, and a verdict.

Every figure comes from the harness (``aioecho.bench``) against a server in
a child process on this machine: the server's CPU per round trip is read
from ``/proc`` at the window's start and end. A claim *held* when the
figures say so across every repeat (the worst repeat of one side against the
best of the other), *did not hold* when they say otherwise the same way,
and is *unclear* when the repeats overlap: never more than the ranges allow.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aioecho.bench import BenchConfig, BenchResult
from aioecho.bench.runner import run as bench_run

from ..core import markdown
from ..core.servers import ServerProcess, running
from .servers import SERVERS

Verdict = Literal["held", "did not hold", "unclear"]
# Each run: connect, this warm-up, this window.
WARMUP_S, DURATION_S = 0.5, 2.0
REPEATS = 2
ACTIVE = 10  # active connections beside the idle ones
IDLE_STEPS = (0, 1000, 10000)
# select() takes descriptors below FD_SETSIZE only.
FD_SETSIZE = 1024
# "Grows": the cost with the most idle connections at least this many times
# the cost with none, worst repeat against best. "Stays": at most this.
GROWS, STAYS = 2.0, 1.5
THOUSANDS = 5000  # "one thread serving thousands"
UVLOOP_CLAIM = 2.0  # "uvloop makes asyncio 2-4x faster": its lower end


@dataclass
class Claim:
    """A claim, its verdict, why, and the figures behind it."""

    key: str
    source: str
    statement: str
    verdict: Verdict = "unclear"
    reason: str = ""
    figures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Log = Callable[[str], None]


def measure(server: ServerProcess, *, connections: int, idle: int = 0, log: Log) -> BenchResult:
    """One harness run of ``connections`` active (and ``idle`` silent) connections."""
    config = BenchConfig(
        host="127.0.0.1",
        port=server.port,
        connections=connections,
        idle=idle,
        duration=DURATION_S,
        warmup=WARMUP_S,
        processes=1,
        timeout=10.0,
        connect_timeout=30.0,
    )
    result = bench_run(config)
    log(
        f"  {server.spec.name}: {connections} active + {idle} idle: "
        f"{result.rps:,.0f} rt/s, server {result.server_cpu_us_per_rt} µs/rt, ok={result.ok}"
    )
    return result


def figure(server: str, result: BenchResult, **extra: Any) -> dict[str, Any]:
    """What a claim's table shows of one run."""
    return {
        "server": server,
        **extra,
        "ok": result.ok,
        "connected": result.connected,
        "rps": result.rps,
        "p99_us": result.latency_us["p99"],
        "server_cpu_us_per_rt": result.server_cpu_us_per_rt,
        "client_cpu": result.client_cpu,
        "jain_index": result.fairness.get("jain_index"),
        "errors": result.errors,
    }


def fd_setsize(log: Log) -> Claim:
    """select() cannot watch a descriptor at or above FD_SETSIZE; poll and epoll can."""
    claim = Claim(
        "fd_setsize",
        "the tutorial",
        f"select is capped at FD_SETSIZE ({FD_SETSIZE}) descriptors; poll and epoll are not",
    )
    connections = FD_SETSIZE + 100
    served = {}
    for name in ("select", "poll", "epoll"):
        with running(SERVERS[name]) as server:
            result = measure(server, connections=connections, log=log)
            served[name] = result.ok
            claim.figures.append(figure(name, result, connections=connections))
    if not served["select"] and served["poll"] and served["epoll"]:
        claim.verdict = "held"
        claim.reason = f"at {connections} connections select failed, poll and epoll served all"
    elif served["select"]:
        claim.verdict = "did not hold"
        claim.reason = f"select served {connections} connections"
    else:
        claim.reason = "poll or epoll failed too: the cap is not what stopped select"
    return claim


def idle_cost(log: Log) -> Claim:
    """CPU per round trip of 10 active connections as idle ones grow."""
    claim = Claim(
        "idle_cost",
        "the tutorial",
        "select and poll scan every watched descriptor, so their cost per round trip grows "
        "with idle connections; epoll (and the asyncio loops on it) pay for the ready ones only",
    )
    costs: dict[str, dict[int, list[float]]] = {}
    for name in ("select", "poll", "epoll", "aioecho-asyncio", "aioecho-uvloop"):
        steps = [idle for idle in IDLE_STEPS if name != "select" or idle + ACTIVE < FD_SETSIZE - 8]
        costs[name] = {}
        with running(SERVERS[name]) as server:
            for idle in steps:
                for repeat in range(REPEATS):
                    result = measure(server, connections=ACTIVE, idle=idle, log=log)
                    claim.figures.append(figure(name, result, idle=idle, repeat=repeat + 1))
                    if result.ok and result.server_cpu_us_per_rt:
                        costs[name].setdefault(idle, []).append(result.server_cpu_us_per_rt)
    growth = {name: growth_range(by_idle) for name, by_idle in costs.items()}
    claim.verdict, claim.reason = judge_idle(growth)
    return claim


def growth_range(by_idle: dict[int, list[float]]) -> tuple[int, float, float] | None:
    """(most idle, lowest, highest growth of the cost over none), worst against best."""
    if 0 not in by_idle or len(by_idle) < 2:
        return None
    most = max(by_idle)
    base, grown = by_idle[0], by_idle[most]
    return most, min(grown) / max(base), max(grown) / min(base)


def judge_idle(growth: dict[str, tuple[int, float, float] | None]) -> tuple[Verdict, str]:
    scanning, ready = ("select", "poll"), ("epoll", "aioecho-asyncio", "aioecho-uvloop")
    known = {name: value for name, value in growth.items() if value is not None}
    if any(name not in known for name in (*scanning, *ready)):
        return "unclear", "a server could not be measured at every step"
    described = "; ".join(
        f"{name} x{low:.1f}-{high:.1f} at {most:,} idle"
        for name, (most, low, high) in known.items()
    )
    grew = all(known[name][1] >= GROWS for name in scanning)
    stayed = all(known[name][2] <= STAYS for name in ready)
    if grew and stayed:
        return "held", f"cost per round trip over the cost with no idle ones: {described}"
    if any(known[name][2] < GROWS for name in scanning):
        return "did not hold", f"a scanning server's cost did not grow: {described}"
    return "unclear", f"the repeats overlap the thresholds: {described}"


def one_thread(log: Log) -> Claim:
    """One thread multiplexes thousands of connections."""
    claim = Claim(
        "one_thread",
        "the tutorial",
        f"one thread, with callbacks on epoll, serves thousands ({THOUSANDS:,}) of connections",
    )
    held = []
    for name in ("epoll", "aioecho-uvloop"):
        with running(SERVERS[name]) as server:
            result = measure(server, connections=THOUSANDS, log=log)
            threads = thread_count(server.process.pid)
        claim.figures.append(figure(name, result, connections=THOUSANDS, threads=threads))
        held.append(result.ok and threads == 1)
    claim.verdict = "held" if all(held) else "did not hold"
    claim.reason = (
        f"each served all {THOUSANDS:,} connections from one thread"
        if all(held)
        else "a server failed the load or ran more than one thread"
    )
    return claim


def thread_count(pid: int) -> int | None:
    """The threads of process ``pid``, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def uvloop_speed(log: Log) -> Claim:
    """uvloop against the standard loop, the same server, alternating."""
    claim = Claim(
        "uvloop_speed",
        "uvloop",
        f"uvloop makes asyncio {UVLOOP_CLAIM:g}-4x faster (here: server CPU per round trip "
        "of aioecho on each loop, 100 connections)",
    )
    costs: dict[str, list[float]] = {"aioecho-asyncio": [], "aioecho-uvloop": []}
    for repeat in range(REPEATS + 1):
        for name in costs:  # A, B, A, B: drift falls on both
            with running(SERVERS[name]) as server:
                result = measure(server, connections=100, log=log)
            claim.figures.append(figure(name, result, repeat=repeat + 1))
            if result.ok and result.server_cpu_us_per_rt:
                costs[name].append(result.server_cpu_us_per_rt)
    if not all(costs.values()):
        claim.reason = "a run failed"
        return claim
    slow, fast = costs["aioecho-asyncio"], costs["aioecho-uvloop"]
    low, high = min(slow) / max(fast), max(slow) / min(fast)
    middle = statistics.median(slow) / statistics.median(fast)
    span = f"x{middle:.2f} (x{low:.2f} to x{high:.2f} over the repeats)"
    if low >= UVLOOP_CLAIM:
        claim.verdict, claim.reason = "held", f"the stdlib loop cost {span} uvloop's CPU"
    elif high < UVLOOP_CLAIM:
        claim.verdict = "did not hold"
        claim.reason = f"the stdlib loop cost {span} uvloop's CPU: faster, not {UVLOOP_CLAIM:g}x"
    else:
        claim.reason = f"the stdlib loop cost {span} uvloop's CPU: the repeats straddle x2"
    return claim


CLAIMS: dict[str, Callable[[Log], Claim]] = {
    "fd_setsize": fd_setsize,
    "idle_cost": idle_cost,
    "one_thread": one_thread,
    "uvloop_speed": uvloop_speed,
}


def run_claims(names: Sequence[str], log: Log) -> list[Claim]:
    """Measure the named claims, in order."""
    claims = []
    for name in names:
        log(f"claim {name}")
        claims.append(CLAIMS[name](log))
        log(f"  -> {claims[-1].verdict}: {claims[-1].reason}")
    return claims


def to_markdown(claims: Sequence[Claim], header: str) -> str:
    """The claims, each with its verdict, reason and figures."""
    parts = [header]
    for claim in claims:
        parts.append(f"## {claim.statement}\n")
        parts.append(f"Source: {claim.source}. **Verdict: {claim.verdict}** ({claim.reason}).\n")
        keys = list(dict.fromkeys(key for row in claim.figures for key in row))
        lines = markdown.table(keys, [])
        for row in claim.figures:
            lines.append(markdown.row(_cell(row.get(key)) for key in keys))
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
