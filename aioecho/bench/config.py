"""Benchmark options: one frozen dataclass shared by the library and the CLI.

Each field carries its flag's help text, metavar and argument type in its
metadata, so ``aioecho/cli/bench.py`` generates the command line from this list
instead of repeating it. This module must stay importable without the
``bench`` extra: the CLI builds its parser from it on every start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..config import DEFAULT_PORT
from ..durations import Duration, parse_duration
from ..loops import LOOP_NAMES, LoopName
from ..options import option
from ..sizes import parse_size

Expect = Literal["upper-sb", "echo"]
EXPECTS: tuple[Expect, ...] = ("upper-sb", "echo")

Mode = Literal["closed", "open"]

TimelineBy = Literal["reply", "due"]

# Used when neither --duration nor --messages says when to stop.
DEFAULT_DURATION = 10.0
# Each step of --find-max-rate measures this long unless --duration says.
SEARCH_STEP_DURATION = 3.0
# One request of this size fits in no kernel socket buffer pair: a larger one
# measures memory copies and buffer sizing rather than an echo round trip.
MAX_SIZE = 16 * 1024 * 1024


class BenchConfigError(ValueError):
    """An option has a value the benchmark cannot run with."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to run: the target, the load's shape, how to verify and when to stop.

    ``host`` and ``port`` both ``None`` means: start an aioecho server in a
    child process and benchmark that.
    """

    host: str | None = option(
        None, "target host; without --host and --port a local aioecho is started", "HOST"
    )
    port: int | None = option(None, f"target port; default: {DEFAULT_PORT} with --host", "PORT")
    connections: int = option(1000, "concurrent connections", "N")
    idle: int = option(
        0,
        "also hold N connections open and silent beside the active ones, each checked "
        "alive with one round trip after the window",
        "N",
    )
    duration: float | None = option(
        None,
        f"seconds to measure; default: {DEFAULT_DURATION:g}s without --messages",
        "DURATION",
        parse=Duration,
    )
    messages: int | None = option(
        None, "stop after this many measured round trips (with --duration: first wins)", "N"
    )
    warmup: float = option(
        1.0, "seconds of traffic before measuring starts", "DURATION", parse=Duration
    )
    size: int = option(
        64,
        "request line length in bytes, newline included; K, M suffixes",
        "BYTES",
        parse=parse_size,
    )
    pipeline: int | None = option(
        None,
        "messages in flight per connection; default: 1 in closed loop, unlimited in open loop",
        "K",
    )
    rate: float | None = option(
        None, "open loop: R messages per second in total, spread over the connections", "R"
    )
    connect_rate: float | None = option(
        None, "new connections per second during ramp-up; default: as fast as possible", "R"
    )
    connect_timeout: float = option(
        5.0, "seconds before a connect attempt counts as failed", "DURATION", parse=Duration
    )
    processes: int | None = option(
        None, "client processes; default: from the core count and the fd limit", "N"
    )
    expect: Expect = option(
        "upper-sb", "reply to verify: aioecho's upper+suffix, or a plain RFC 862 echo"
    )
    suffix: str = option(
        "_SB", "the suffix upper-sb replies carry (and the local server uses)", "TEXT"
    )
    tls: bool = option(False, "speak TLS to the target (needs --host/--port)")
    tls_ca: str | None = option(None, "with --tls: CA certificate(s) to verify the server", "FILE")
    tls_insecure: bool = option(False, "with --tls: do not verify the server's certificate")
    loop: LoopName = option("auto", "the client's event loop")
    server_loop: LoopName = option("auto", "event loop of the local server")
    timeout: float = option(
        5.0,
        "seconds a request may wait for its reply before it counts as timed out",
        "DURATION",
        parse=Duration,
    )
    rate_to: float | None = option(
        None, "open loop: ramp from --rate to this rate over --ramp seconds (--rate A:B:Ts)", "R"
    )
    ramp: float | None = option(
        None, "seconds the ramp to --rate-to takes, from measuring", "DURATION", parse=Duration
    )
    churn: int | None = option(None, "closed loop: reconnect every N requests", "N")
    timeline_by: TimelineBy = option(
        "reply",
        "file each round trip of the per-second timeline by when its reply came, or by "
        "when it was due (sent, in closed loop): a server stall then shows in the second "
        "it began",
    )
    find_max_rate: float | None = option(
        None,
        "search, in open-loop steps, the highest rate with p99 under P99 (e.g. 5ms) and "
        "nothing timed out",
        "P99",
        parse=Duration,
    )

    def __post_init__(self) -> None:
        _check(self.host is None or self.host != "", "host must not be empty")
        _check(
            self.port is None or 1 <= self.port <= 65535, f"port must be 1..65535, not {self.port}"
        )
        _check(self.connections >= 1, f"connections must be at least 1, not {self.connections}")
        _check(self.idle >= 0, f"idle must not be negative, not {self.idle}")
        _check_positive("duration", self.duration)
        _check(self.messages is None or self.messages >= 1, "messages must be at least 1")
        _check(math.isfinite(self.warmup) and self.warmup >= 0, "warmup must not be negative")
        _check(1 <= self.size <= MAX_SIZE, f"size must be 1..{MAX_SIZE} bytes, not {self.size}")
        _check(self.pipeline is None or self.pipeline >= 1, "pipeline must be at least 1")
        _check_positive("rate", self.rate)
        _check_positive("connect_rate", self.connect_rate)
        _check_positive("connect_timeout", self.connect_timeout)
        _check(self.processes is None or self.processes >= 1, "processes must be at least 1")
        _check(self.expect in EXPECTS, f"expect must be one of {EXPECTS}")
        _check(
            self.tls or (self.tls_ca is None and not self.tls_insecure),
            "tls_ca and tls_insecure need tls",
        )
        _check(
            not (self.tls and self.spawns_server),
            "tls needs a target (--host/--port): start it with --tls-cert and --tls-key",
        )
        _check(self.loop in LOOP_NAMES, f"loop must be one of {LOOP_NAMES}")
        _check(self.server_loop in LOOP_NAMES, f"server_loop must be one of {LOOP_NAMES}")
        _check(
            "\n" not in self.suffix and "\r" not in self.suffix,
            "suffix must not contain CR or LF: it would break line framing",
        )
        _check_positive("timeout", self.timeout)
        _check_positive("rate_to", self.rate_to)
        _check_positive("ramp", self.ramp)
        _check((self.rate_to is None) == (self.ramp is None), "rate_to and ramp go together")
        _check(self.rate_to is None or self.rate is not None, "a ramp needs a starting rate")
        _check(self.churn is None or self.churn >= 1, "churn must be at least 1")
        _check(self.churn is None or self.rate is None, "churn works in closed loop (no rate)")
        _check_positive("find_max_rate", self.find_max_rate)
        _check(
            self.find_max_rate is None or (self.messages is None and self.rate_to is None),
            "find_max_rate runs timed steps at constant rates: no messages, no ramp",
        )

    @property
    def mode(self) -> Mode:
        """``open`` (paced by --rate) or ``closed`` (each reply releases the next request)."""
        return "closed" if self.rate is None and self.find_max_rate is None else "open"

    @property
    def spawns_server(self) -> bool:
        """Whether the benchmark starts its own aioecho server."""
        return self.host is None and self.port is None

    @property
    def time_limit(self) -> float | None:
        """Seconds to measure, or ``None`` when only --messages ends the run."""
        if self.duration is None and self.messages is None:
            return DEFAULT_DURATION if self.find_max_rate is None else SEARCH_STEP_DURATION
        return self.duration

    @property
    def in_flight_cap(self) -> int | None:
        """Most messages one connection has unanswered; ``None`` means no cap."""
        if self.pipeline is None and self.mode == "closed":
            return 1
        return self.pipeline


def parse_rate(text: str) -> tuple[float, float | None, float | None]:
    """``R``, or ``FROM:TO:DURATION`` (``1000:20000:10s``): start rate, end rate, ramp seconds."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return float(parts[0]), None, None
        if len(parts) == 3:
            return float(parts[0]), float(parts[1]), parse_duration(parts[2])
    except ValueError:
        pass
    raise BenchConfigError(
        f"rate must be R or FROM:TO:DURATION (like 1000:20000:10s), not {text!r}"
    )


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchConfigError(message)


def _check_positive(name: str, value: float | None) -> None:
    _check(value is None or (math.isfinite(value) and value > 0), f"{name} must be positive")
