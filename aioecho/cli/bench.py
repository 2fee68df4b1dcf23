"""``python -m aioecho bench``: flags generated from :class:`BenchConfig`.

Importing this module must not need the ``bench`` extra: the main parser
registers the subcommand on every start. What the command does once its
flags are read (:mod:`aioecho.cli.bench_run`) is imported when it runs.
"""

from __future__ import annotations

import argparse
import ssl
from dataclasses import dataclass
from typing import Any

from ..bench.config import BenchConfig, BenchConfigError, parse_rate
from ..loops import resolve_loop
from ..options import option
from ..tls import client_context
from .parsing import Parser, Sections, add_flags, add_sections, from_flags

DESCRIPTION = """\
Drive many concurrent connections against an echo server, verify every reply
byte for byte, and report throughput and latency percentiles. Without --host
and --port, an aioecho server is started in a child process and benchmarked."""
EXAMPLES = """\
examples:
  aioecho bench                                   10 s against a local aioecho
  aioecho bench --host 10.0.0.2 --port 8088 --connections 5000 --duration 30s
  aioecho bench --rate 1000:20000:10s --timeline  open loop, ramping up
  aioecho bench --json > before.json
  aioecho bench --baseline before.json --fail-if 'p99>5ms' --fail-if 'rps<10000'
  aioecho bench --compare 127.0.0.1:9000 --repeat 5
"""
SECTIONS: Sections = (
    ("target", ("host", "port", "expect", "suffix", "server_loop")),
    ("TLS", ("tls", "tls_ca", "tls_insecure")),
    (
        "load",
        (
            "connections",
            "idle",
            "size",
            "pipeline",
            "rate",
            "rate_to",
            "ramp",
            "connect_rate",
            "churn",
            "processes",
            "loop",
        ),
    ),
    ("timing", ("duration", "messages", "warmup", "timeout", "connect_timeout")),
    ("repeats and search", ("repeat", "compare", "find_max_rate")),
    ("output", ("json", "timeline", "timeline_by", "hgrm")),
    ("gates", ("fail_if", "baseline", "max_regression")),
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the runs go and are reported, beside what each measures (:class:`BenchConfig`)."""

    json: bool = option(
        False,
        "print one JSON object on stdout (described by aioecho/bench/result.schema.json), "
        "with the per-second timeline and the encoded latency histogram",
    )
    timeline: bool = option(
        False,
        "also print the per-second timeline: round trips, p50/p99/max, errors, "
        "open connections and connects of each second (see --timeline-by)",
    )
    repeat: int = option(
        1,
        "run N times and report the median and its 95%% bootstrap interval",
        "N",
        parse=_positive_int,
    )
    compare: str | None = option(
        None,
        "also measure this server, alternating runs A/B/A/B (--repeat each, default 3)",
        "HOST:PORT",
    )
    fail_if: tuple[str, ...] = option(
        (),
        "exit 1 when a figure crosses a limit, like 'p99>5ms' or 'rps<10000' (repeatable)",
        "GATE",
        repeat=True,
    )
    baseline: str | None = option(
        None,
        "a result saved with --json: exit 1 when msg/s fell, or p99 rose, by more "
        "than --max-regression",
        "FILE",
    )
    max_regression: str = option("10%", "how much worse than --baseline still passes", "PCT")
    hgrm: str | None = option(
        None,
        "write the latency distribution to FILE in HdrHistogram's percentile format (ms)",
        "FILE",
    )


def add_parser(commands: argparse._SubParsersAction[Any]) -> Parser:
    """Register the ``bench`` subcommand."""
    parser: Parser = commands.add_parser(
        "bench",
        help="load-benchmark a server (by default a local aioecho)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
    )
    placed = add_sections(parser, SECTIONS)
    add_flags(parser, BenchConfig, placed)
    # --rate also takes a ramp, FROM:TO:DURATION; main() spreads it over the fields.
    rate = next(action for action in parser._actions if action.dest == "rate")
    rate.type, rate.metavar = _rate_flag, "R|FROM:TO:DURATION"
    add_flags(parser, RunOptions, placed)
    parser.set_defaults(run=main, parser=parser)
    return parser


def _rate_flag(text: str) -> tuple[float, float | None, float | None]:
    try:
        return parse_rate(text)
    except BenchConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(options: argparse.Namespace) -> int:
    """Run the parsed ``bench`` command; the exit code (1 on any failure)."""
    parser: Parser = options.parser
    if options.rate is not None:
        options.rate, ramp_to, ramp = options.rate
        if ramp_to is not None:
            options.rate_to, options.ramp = ramp_to, ramp
    try:
        config = from_flags(BenchConfig, options)
        resolve_loop(config.loop)
        if config.spawns_server:
            resolve_loop(config.server_loop)
        if config.tls:
            client_context(config.tls_ca, config.tls_insecure)  # a missing or bad CA file
    except BenchConfigError as exc:
        parser.error(str(exc))
    except (OSError, ssl.SSLError) as exc:
        parser.error(f"--tls-ca {config.tls_ca}: {exc.strerror or exc}")
    from .bench_run import execute  # needs the bench extra: a MissingExtraError names it

    return execute(config, options, parser)  # options: BenchConfig's and RunOptions' flags
