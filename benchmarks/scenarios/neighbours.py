"""Well-behaved neighbours: ping-pong clients measured by aioecho's own harness.

They run as ``python -m aioecho bench`` in a process of their own, one
64-byte line in flight per connection, so the figures are the harness's
(verified replies, HDR latency) and the client's CPU is reported beside
them: near 1.0 core, the neighbours' own process is the limit.

Where the server drops lines on purpose (``--drop``), the harness would
stall each connection at its first unanswered line, so
:func:`measure_tolerant` stands in: the same ping-pong, each line numbered,
and a line unanswered after :data:`GIVE_UP_S` counted as unanswered while
the connection goes on with the next.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aioecho.bench.histogram import Histogram

from .target import HOST

CONNECTIONS = 10
LINE_BYTES = 64
WARMUP_S = 0.5
# The harness connects, warms up, measures, closes: give it this much more.
SLACK_S = 30.0
US_PER_S = 1_000_000
# A line the server dropped is never answered: the tolerant neighbour moves on after this.
GIVE_UP_S = 0.25


@dataclass(frozen=True)
class Neighbours:
    """What the ping-pong neighbours measured in one phase."""

    rps: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu: float
    errors: int  # connections that failed to open, were lost, or got a wrong reply

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def median(cls, phases: Sequence[Neighbours]) -> Neighbours:
        """Each figure's median over several phases; errors are summed, not lost."""
        return cls(
            rps=statistics.median(phase.rps for phase in phases),
            p50_ms=_median([phase.p50_ms for phase in phases]),
            p99_ms=_median([phase.p99_ms for phase in phases]),
            client_cpu=statistics.median(phase.client_cpu for phase in phases),
            errors=sum(phase.errors for phase in phases),
        )


def measure(port: int, seconds: float, suffix: str) -> Neighbours:
    """Run the neighbours for ``seconds`` (after a short warm-up) and return their figures."""
    command = [
        sys.executable, "-m", "aioecho", "bench",
        "--host", HOST, "--port", str(port),
        "--connections", str(CONNECTIONS), "--size", str(LINE_BYTES), "--pipeline", "1",
        "--duration", str(seconds), "--warmup", str(WARMUP_S),
        "--processes", "1", "--suffix", suffix, "--json",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + WARMUP_S + SLACK_S, check=False
    )
    if not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"neighbours failed (exit status {done.returncode}): {last}")
    result = json.loads(done.stdout)
    latency = result["latency_us"]
    return Neighbours(
        rps=result["rps"],
        p50_ms=_ms(latency["p50"]),
        p99_ms=_ms(latency["p99"]),
        client_cpu=result["client_cpu"],
        errors=sum(result["connect_errors"].values()) + result["errors"] + result["mismatches"],
    )


def measure_tolerant(port: int, seconds: float, suffix: str) -> Neighbours:
    """The ping-pong neighbours in this process, tolerating unanswered lines; their figures.

    ``errors`` counts the lines left unanswered (about the drop rate), not
    lost connections.
    """
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    latencies, unanswered = asyncio.run(_tolerant_phase(port, seconds, suffix.encode()))
    used = resource.getrusage(resource.RUSAGE_SELF)
    # The harness's own histogram: the same percentiles as the harness-run neighbours'.
    histogram = Histogram()
    for latency in latencies:
        histogram.record(round(latency * US_PER_S))
    summary = histogram.summary()
    return Neighbours(
        rps=len(latencies) / seconds,
        p50_ms=_ms(summary["p50"]),
        p99_ms=_ms(summary["p99"]),
        client_cpu=(used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) / seconds,
        errors=unanswered,
    )


async def _tolerant_phase(port: int, seconds: float, suffix: bytes) -> tuple[list[float], int]:
    """Every connection's round-trip times after the warm-up, and the lines left unanswered."""
    latencies: list[float] = []
    start = time.perf_counter() + WARMUP_S
    ends = await asyncio.gather(
        *(_tolerant_ping_pong(port, start, start + seconds, suffix, latencies)
          for _ in range(CONNECTIONS))
    )  # fmt: skip
    return latencies, sum(ends)


async def _tolerant_ping_pong(
    port: int, start: float, end: float, suffix: bytes, latencies: list[float]
) -> int:
    """One connection's numbered lines until ``end``; how many went unanswered."""
    reader, writer = await asyncio.open_connection(HOST, port)
    unanswered = number = 0
    try:
        while (sent := time.perf_counter()) < end:
            number += 1
            line = b"n%d " % number
            line = line.ljust(LINE_BYTES - 1, b"x") + b"\n"
            writer.write(line)
            try:
                reply = await asyncio.wait_for(reader.readline(), GIVE_UP_S)
            except TimeoutError:
                unanswered += sent >= start
                continue
            if reply != line[:-1].upper() + suffix + b"\n":
                raise RuntimeError(f"neighbour got {reply[:80]!r} for {line[:80]!r}")
            if sent >= start:
                latencies.append(time.perf_counter() - sent)
    finally:
        writer.close()
    return unanswered


def _median(values: Sequence[float | None]) -> float | None:
    """The median of the phases that measured anything (none: ``None``)."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / 1000


# Runs the neighbours for a phase: (port, seconds, suffix) to their figures.
Measure = Callable[[int, float, str], Neighbours]
