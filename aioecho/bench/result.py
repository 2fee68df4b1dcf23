"""Results: what one client process measured, and the merged run result."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import MAX_EXAMPLES
from .config import BenchConfig, Mode
from .fairness import fairness
from .histogram import Histogram, Summary
from .payload import Payload
from .stalls import stall_warnings
from .timeline import Second, merge_timelines

NS_PER_S = 1_000_000_000
US_PER_S = 1_000_000
# An open-loop run that wrote more than this share of its due messages only
# after the window ended (or never) did not run at the rate it was asked for.
BEHIND_LIMIT = 0.03
# Signs that the client, not the server, was the limit: a client process
# this busy; an event loop this late (its 1 ms timer, p99), and late by a
# large share of the latency; an open-loop pacer writing this late.
SATURATED_CPU = 0.9
LAG_LIMIT_US = 1_000
LAG_SHARE = 0.25
# Opening a connection keeps the loop busy (a socket, a connect, a protocol):
# a few milliseconds late while connecting is the work itself.
CONNECT_LAG_LIMIT_US = 5_000
# Send lag within this is the pacer's precision (a timerfd's wake-up), not a
# client falling behind: against an 80 µs round trip, 25% would be 20 µs.
SEND_LAG_FLOOR_US = 100
# A lagging loop whose process used less CPU than this was waiting for a core.
STARVED_CPU = 0.5


@dataclass(frozen=True, kw_only=True)
class Accounted:
    """Every request accounted for (requests whose latency counts from an instant
    in the window): ``sent = answered + timed_out + unanswered``."""

    sent: int = 0
    answered: int = 0
    timed_out: int = 0
    unanswered: int = 0


@dataclass(frozen=True)
class PartialResult(Accounted):
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
    mismatch_kinds: dict[str, int] = field(default_factory=dict)
    due: int | None = None
    late: int = 0
    unsent: int = 0
    cpu_wall_s: float = 0.0  # wall time over which cpu_s was measured
    loop_lag: bytes = b""
    connect_loop_lag: bytes = b""
    sources: dict[str, int] = field(default_factory=dict)
    connect_start_ns: int = 0
    connect_end_ns: int = 0
    rss_before: int = 0
    rss_after: int = 0
    timeline: list[Second] = field(default_factory=list)
    connects: int = 0
    uncorrected: bytes = b""
    send_lag: bytes = b""
    unsent_age: bytes = b""
    sent_after_window: int = 0
    pacer_precise: bool = False
    second_ns: int = NS_PER_S  # how long a second of the timeline lasts
    trips_per_connection: list[int] = field(default_factory=list)  # in the window
    longest_gaps_us: list[int] = field(default_factory=list)  # between replies
    starved: int = 0  # connections with a whole second of the window unanswered
    idle: int = 0  # idle connections asked for
    idle_connected: int = 0
    idle_alive: int = 0  # answered their check after the window
    connects_timed: int = 0


@dataclass(frozen=True)
class BenchResult(Accounted):
    """The outcome of a benchmark run; :meth:`to_dict` is the ``--json`` object.

    ``latency_us`` and ``connect_latency_us`` map ``p50``, ``p90``, ``p95``,
    ``p99``, ``p999``, ``p9999`` and ``max`` to microseconds (``None`` when
    nothing was measured). In open loop ``latency_us`` counts from the
    instant each message was due (wrk2's corrected latency), and messages
    due in the window but never sent count with their age at the window's
    end; ``uncorrected_latency_us`` counts from the write, ``send_lag_us``
    is how late the writes were. ``bytes_per_s`` counts request and reply bytes, both
    directions. ``errors`` counts connections lost after they opened, by
    reason in ``error_reasons``; ``connect_errors`` counts those that never
    opened. ``client_cpu`` is how busy the client processes were while
    measuring, in cores per process: near 1.0, the harness itself may be
    what limits the numbers. ``client_cpu_us_per_rt`` is what the client
    processes together spent per round trip, to hold against the server's
    own CPU per round trip: the larger of the two is the likelier limit.
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
    client_cpu_us_per_rt: float | None
    latency_us: Summary
    connect_latency_us: Summary
    errors: int
    error_reasons: dict[str, int]
    mismatches: int
    mismatch_examples: list[str]
    expect: str
    # -- the accounting (Accounted's fields), and what it found
    mismatch_kinds: dict[str, int] = field(default_factory=dict)
    timeout_s: float = 5.0
    # -- open loop: the schedule. due = sent + unsent; late were sent > 10 ms late.
    due: int | None = None
    late: int | None = None
    unsent: int | None = None
    sent_after_window: int | None = None
    sent_rate: float | None = None
    rate_to: float | None = None
    ramp_s: float | None = None
    churn: int | None = None
    unique_requests: bool = True
    # -- the client itself
    cpu_wall_s: float = 0.0
    loop_lag_us: Summary = field(default_factory=dict)
    connect_loop_lag_us: Summary = field(default_factory=dict)
    client_limits: list[str] = field(default_factory=list)
    source_addresses: dict[str, int] = field(default_factory=dict)
    connect_s: float = 0.0
    client_bytes_per_connection: float | None = None
    server_bytes_per_connection: float | None = None
    server_cpu_us_per_rt: float | None = None
    # -- exports
    timeline: list[dict[str, Any]] = field(default_factory=list)
    max_rate: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    # [last pass, first step that did not pass], and which side that step's
    # shortfall was on: "server", or "client" (inconclusive about the server).
    bracket: list[float | None] | None = None
    search_limit: str | None = None
    latency_histogram: str = field(default="", repr=False)
    uncorrected_latency_us: Summary | None = None
    send_lag_us: Summary | None = None
    pacer_precise: bool | None = None
    warnings: list[str] = field(default_factory=list)
    connects: int = 0  # connections opened, reconnects (--churn) included
    connect_latency_count: int = 0  # connects timed in connect_latency_us
    fairness: dict[str, Any] = field(default_factory=dict)
    # -- --idle: connections held silent beside the active ones
    idle: int = 0
    idle_connected: int = 0
    idle_alive: int = 0
    # -- provenance (aioecho.bench.provenance)
    schema_version: int = 0
    tool: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    command: list[str] | None = None

    @property
    def ok(self) -> bool:
        """Every connection opened and stayed up, every reply was right and in
        time, every message due was sent, something was measured."""
        return (
            self.connected == self.connections
            and self.errors == 0
            and self.mismatches == 0
            and self.timed_out == 0
            and not self.unsent
            and (self.behind or 0.0) <= BEHIND_LIMIT
            and self.idle_alive == self.idle
            and self.messages > 0
        )

    @property
    def client_bound(self) -> bool:
        """Whether the client, not the server, may have been the limit."""
        return bool(self.client_limits)

    @property
    def behind(self) -> float | None:
        """Open loop: the share of the messages due in the window that were not
        written in it (written after it ended, or never)."""
        if not self.due or self.unsent is None:
            return None
        return (self.unsent + (self.sent_after_window or 0)) / self.due

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of every field, plus ``ok``, ``client_bound`` and
        ``behind``; result.schema.json describes it. ``latency_histogram`` is the
        HDR histogram, compressed and base64-encoded: results merge exactly
        with :func:`merge_latency`."""
        fields = dataclasses.asdict(self)
        return {**fields, "ok": self.ok, "client_bound": self.client_bound, "behind": self.behind}

    def latency(self) -> Histogram:
        """The full latency distribution (microseconds)."""
        return Histogram.decode(self.latency_histogram.encode())


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
    lag, connect_lag = Histogram(), Histogram()
    uncorrected, send_lag, unsent_age = Histogram(), Histogram(), Histogram()
    connect_errors: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    examples: list[str] = []
    for part in parts:
        latency.add(Histogram.decode(part.latency))
        connect_latency.add(Histogram.decode(part.connect_latency))
        for histogram, encoded in (
            (lag, part.loop_lag),
            (connect_lag, part.connect_loop_lag),
            (uncorrected, part.uncorrected),
            (send_lag, part.send_lag),
            (unsent_age, part.unsent_age),
        ):
            if encoded:
                histogram.add(Histogram.decode(encoded))
        connect_errors.update(part.connect_errors)
        lost.update(part.lost)
        kinds.update(part.mismatch_kinds)
        sources.update(part.sources)
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
    latency.add(unsent_age)  # the messages never sent are the latest of all
    rps = messages / duration if duration else 0.0
    cpu_wall = sum(part.cpu_wall_s for part in parts)
    client_cpu = sum(part.cpu_s for part in parts) / cpu_wall if cpu_wall else 0.0
    open_loop = config.mode == "open"
    due = sum(part.due or 0 for part in parts) if open_loop else None
    unsent = sum(part.unsent for part in parts) if open_loop else None
    sent = sum(part.sent for part in parts)
    connected = sum(part.connected for part in parts)
    started = [part.connect_start_ns for part in parts if part.connect_end_ns]
    connect_end = max(part.connect_end_ns for part in parts)
    connect_s = (connect_end - min(started)) / NS_PER_S if started else 0.0
    grown = sum(part.rss_after - part.rss_before for part in parts if part.rss_after)
    summaries = {"lag": lag.summary(), "connect_lag": connect_lag.summary()}
    summary = latency.summary()
    limits = client_limits(
        client_cpu, summaries["lag"], summary, summaries["connect_lag"],
        connect_latency.summary(), send_lag.summary() if open_loop else None,
    )  # fmt: skip
    timeline = merge_timelines([part.timeline for part in parts])
    whole_seconds = window_ns // parts[0].second_ns if parts else 0
    return BenchResult(
        target=target,
        server=server,
        mode=config.mode,
        rate=config.rate,
        connections=sum(part.connections for part in parts),
        connected=connected,
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
        client_cpu=round(client_cpu, 3),
        client_cpu_us_per_rt=(
            round(client_cpu * len(parts) / rps * US_PER_S, 2) if rps and client_cpu else None
        ),
        latency_us=summary,
        connect_latency_us=connect_latency.summary(),
        errors=sum(lost.values()),
        error_reasons=dict(lost),
        mismatches=sum(part.mismatches for part in parts),
        mismatch_examples=examples[:MAX_EXAMPLES],
        expect=config.expect,
        mismatch_kinds=dict(kinds),
        timeout_s=config.timeout,
        sent=sent,
        answered=sum(part.answered for part in parts),
        timed_out=sum(part.timed_out for part in parts),
        unanswered=sum(part.unanswered for part in parts),
        due=due,
        late=sum(part.late for part in parts) if open_loop else None,
        unsent=unsent,
        sent_after_window=(sum(part.sent_after_window for part in parts) if open_loop else None),
        sent_rate=round(sent / duration, 1) if open_loop and duration else None,
        rate_to=config.rate_to,
        ramp_s=config.ramp,
        churn=config.churn,
        unique_requests=Payload.build(
            request_size, config.expect, config.suffix, config.connections
        ).unique,
        cpu_wall_s=round(cpu_wall, 6),
        loop_lag_us=summaries["lag"],
        connect_loop_lag_us=summaries["connect_lag"],
        client_limits=limits,
        source_addresses=dict(sorted(sources.items())),
        connect_s=round(connect_s, 6),
        client_bytes_per_connection=round(grown / connected) if connected and grown > 0 else None,
        timeline=timeline,
        latency_histogram=latency.encode().decode("ascii"),
        uncorrected_latency_us=uncorrected.summary() if open_loop else None,
        send_lag_us=send_lag.summary() if open_loop else None,
        pacer_precise=all(part.pacer_precise for part in parts) if open_loop else None,
        warnings=stall_warnings(summary, timeline[:whole_seconds]),
        connects=sum(part.connects for part in parts),
        connect_latency_count=sum(part.connects_timed for part in parts),
        idle=sum(part.idle for part in parts),
        idle_connected=sum(part.idle_connected for part in parts),
        idle_alive=sum(part.idle_alive for part in parts),
        fairness=fairness(
            [trips for part in parts for trips in part.trips_per_connection],
            [gap for part in parts for gap in part.longest_gaps_us],
            sum(part.starved for part in parts),
        ),
    )


def merge_latency(results: Sequence[BenchResult | dict[str, Any]]) -> Histogram:
    """The latency histogram of several runs together, from results or their JSON:
    exactly the histogram of every round trip of all of them."""
    merged = Histogram()
    for result in results:
        encoded = (
            result["latency_histogram"] if isinstance(result, dict) else result.latency_histogram
        )
        merged.add(Histogram.decode(encoded.encode("ascii")))
    return merged


def client_limits(
    cpu: float,
    lag: Summary,
    latency: Summary,
    connect_lag: Summary,
    connect_latency: Summary,
    send_lag: Summary | None = None,
) -> list[str]:
    """Why the client, not the server, may have been the limit (empty: no sign of it)."""
    reasons = []
    if cpu >= SATURATED_CPU:
        reasons.append(f"client CPU at {cpu:.0%} of a core per process")
    if send_lag is not None and _pacer_late(send_lag, latency):
        reasons.append(
            f"send lag p99 {_ms(send_lag['p99'])} ms against latency p99 "
            f"{_ms(latency['p99'])} ms: messages left the client late, the latency is "
            "largely the client's"
        )
    if _lagging(lag, latency):
        reasons.append(
            f"client event loop lag p99 {_ms(lag['p99'])} ms against latency p99 "
            f"{_ms(latency['p99'])} ms: the latency includes queueing in the client" + _starved(cpu)
        )
    if _lagging(connect_lag, connect_latency, CONNECT_LAG_LIMIT_US):
        reasons.append(
            f"client event loop lag p99 {_ms(connect_lag['p99'])} ms while connecting: "
            "connect latency includes queueing in the client (try --connect-rate)"
        )
    return reasons


def _starved(cpu: float) -> str:
    """A loop that lags while its process is mostly idle was kept off the cores."""
    if cpu >= STARVED_CPU:
        return ""
    return f" (at {cpu:.0%} CPU: other processes held the cores)"


def _pacer_late(send_lag: Summary, latency: Summary) -> bool:
    late, typical = send_lag.get("p99"), latency.get("p99")
    if late is None or late <= SEND_LAG_FLOOR_US:
        return False
    return typical is None or late > LAG_SHARE * typical


def _lagging(lag: Summary, latency: Summary, limit_us: int = LAG_LIMIT_US) -> bool:
    worst, typical = lag.get("p99"), latency.get("p99")
    if worst is None or worst < limit_us:
        return False
    return typical is None or worst >= LAG_SHARE * typical


def _ms(value_us: int | None) -> str:
    return "-" if value_us is None else f"{value_us / 1000:,.2f}"
