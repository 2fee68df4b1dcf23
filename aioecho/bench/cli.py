"""``python -m aioecho bench``: flags generated from :class:`BenchConfig`.

Importing this module must not need the ``bench`` extra: the main parser
registers the subcommand on every start. The engine is imported when the
command runs.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from typing import Any

from ..loops import LoopUnavailableError, resolve_loop
from ..options import add_flags, from_flags
from ..tls import client_context
from .config import BenchConfig, BenchConfigError, parse_rate

DESCRIPTION = (
    "Drive many concurrent connections against an echo server, verify every reply "
    "byte for byte, and report throughput and latency percentiles. Without --host "
    "and --port, an aioecho server is started in a child process and benchmarked."
)
EXTRA_MISSING = "the bench extra is not installed: pip install 'aioecho[bench]'"


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Register the ``bench`` subcommand."""
    parser = commands.add_parser(
        "bench",
        help="load-benchmark a server (by default a local aioecho)",
        description=DESCRIPTION,
    )
    add_flags(parser, BenchConfig)
    # --rate also takes a ramp, FROM:TO:SECONDS; main() spreads it over the fields.
    rate = next(action for action in parser._actions if action.dest == "rate")
    rate.type, rate.metavar = _rate_flag, "R|FROM:TO:Ts"
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout (described by aioecho/bench/result.schema.json), "
        "with the per-second timeline and the encoded latency histogram",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also print the per-second timeline: round trips, p50/p99/max, errors, "
        "open connections and connects of each second (see --timeline-by)",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run N times and report the median and its 95%% bootstrap interval",
    )
    parser.add_argument(
        "--compare",
        metavar="HOST:PORT",
        help="also measure this server, alternating runs A/B/A/B (--repeat each, default 3)",
    )
    parser.add_argument(
        "--fail-if",
        action="append",
        default=[],
        metavar="GATE",
        help="exit 1 when a figure crosses a limit, like 'p99>5ms' or 'rps<10000' (repeatable)",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="a result saved with --json: exit 1 when msg/s fell, or p99 rose, by more "
        "than --max-regression",
    )
    parser.add_argument(
        "--max-regression",
        default="10%",
        metavar="PCT",
        help="how much worse than --baseline still passes (default: %(default)s)",
    )
    parser.add_argument(
        "--hgrm",
        metavar="FILE",
        help="write the latency distribution to FILE in HdrHistogram's percentile format (ms)",
    )
    parser.set_defaults(bench_parser=parser)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _rate_flag(text: str) -> tuple[float, float | None, float | None]:
    try:
        return parse_rate(text)
    except BenchConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(options: argparse.Namespace) -> int:
    """Run the parsed ``bench`` command; the exit code (1 on any failure)."""
    parser: argparse.ArgumentParser = options.bench_parser
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
    except (BenchConfigError, LoopUnavailableError) as exc:
        parser.error(str(exc))
    except (OSError, ssl.SSLError) as exc:
        parser.error(f"--tls-ca {config.tls_ca}: {exc.strerror or exc}")
    try:
        from .command import execute
    except ImportError as exc:
        print(f"aioecho bench: {EXTRA_MISSING} ({exc})", file=sys.stderr)
        return 1
    return execute(config, options)
