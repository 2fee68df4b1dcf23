"""Results: what one client process measured, and the merged run result."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import BenchConfig, Mode
from .connection import MAX_EXAMPLES
from .histogram import Histogram, Summary

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class PartialResult:
    """One process's share, picklable so that it can cross a process boundary.

    Histograms travel encoded; the measurement window is in monotonic
    nanoseconds, a clock all processes on the machine share.
    """

    connections: int
    connected: int
    connect_errors: dict[str, int]
    lost: dict[str, int]
    mismatches: int
    examples: list[str]
    measure_start_ns: int
    measure_end_ns: int
    cpu_s: float  # CPU time the process used while measuring
    latency: bytes
    connect_latency: bytes


@dataclass(frozen=True)
class BenchResult:
    """The outcome of a benchmark run; :meth:`to_dict` is the ``--json`` object.

    ``latency_us`` and ``connect_latency_us`` map ``p50``, ``p90``, ``p99``,
    ``p999``, ``p9999`` and ``max`` to microseconds (``None`` when nothing
    was measured). ``bytes_per_s`` counts request and reply bytes, both
    directions. ``errors`` counts connections lost after they opened, by
    reason in ``error_reasons``; ``connect_errors`` counts those that never
    opened. ``client_cpu`` is how busy the client processes were while
    measuring, in cores per process: near 1.0, the harness itself may be
    what limits the numbers.
    """

    target: str
    server: str | None
    mode: Mode
    rate: float | None
    connections: int
    connected: int
    connect_errors: dict[str, int]
    processes: int
    loop: str
    size: int
    pipeline: int | None
    warmup_s: float
    duration_s: float
    messages: int
    rps: float
    bytes_per_s: float
    client_cpu: float
    latency_us: Summary
    connect_latency_us: Summary
    errors: int
    error_reasons: dict[str, int]
    mismatches: int
    mismatch_examples: list[str]
    expect: str

    @property
    def ok(self) -> bool:
        """Every connection opened and stayed up, every reply was right, something was measured."""
        return (
            self.connected == self.connections
            and self.errors == 0
            and self.mismatches == 0
            and self.messages > 0
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of every field, plus ``ok``."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def merge(
    parts: Sequence[PartialResult],
    config: BenchConfig,
    *,
    target: str,
    server: str | None,
    loop: str,
    request_size: int,
    reply_size: int,
) -> BenchResult:
    """Combine the processes' shares into one result.

    The measurement window runs from the earliest start to the latest end,
    so throughput is what all processes achieved together over the same time.
    """
    latency, connect_latency = Histogram(), Histogram()
    connect_errors: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    examples: list[str] = []
    for part in parts:
        latency.add(Histogram.decode(part.latency))
        connect_latency.add(Histogram.decode(part.connect_latency))
        connect_errors.update(part.connect_errors)
        lost.update(part.lost)
        examples.extend(part.examples)
    measured = [part for part in parts if part.measure_end_ns > part.measure_start_ns]
    window_ns = (
        max(part.measure_end_ns for part in measured)
        - min(part.measure_start_ns for part in measured)
        if measured
        else 0
    )
    duration = window_ns / NS_PER_S
    messages = latency.count
    rps = messages / duration if duration else 0.0
    return BenchResult(
        target=target,
        server=server,
        mode=config.mode,
        rate=config.rate,
        connections=sum(part.connections for part in parts),
        connected=sum(part.connected for part in parts),
        connect_errors=dict(connect_errors),
        processes=len(parts),
        loop=loop,
        size=request_size,
        pipeline=config.in_flight_cap,
        warmup_s=config.warmup,
        duration_s=round(duration, 6),
        messages=messages,
        rps=round(rps, 1),
        bytes_per_s=round(rps * (request_size + reply_size), 1),
        client_cpu=round(sum(part.cpu_s for part in parts) / (duration * len(parts)), 3)
        if duration
        else 0.0,
        latency_us=latency.summary(),
        connect_latency_us=connect_latency.summary(),
        errors=sum(lost.values()),
        error_reasons=dict(lost),
        mismatches=sum(part.mismatches for part in parts),
        mismatch_examples=examples[:MAX_EXAMPLES],
        expect=config.expect,
    )
