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
        "--hgrm",
        metavar="FILE",
        help="write the latency distribution to FILE in HdrHistogram's percentile format (ms)",
    )
    parser.set_defaults(bench_parser=parser)


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
        from . import report, runner
        from .progress import ProgressLine
        from .search import SearchRefused
        from .target import TargetError
    except ImportError as exc:
        print(f"aioecho bench: {EXTRA_MISSING} ({exc})", file=sys.stderr)
        return 1
    progress = ProgressLine(sys.stdout, config.connections) if sys.stdout.isatty() else None
    try:
        result = runner.run(
            config,
            on_progress=progress,
            handle_interrupt=True,
            command=["python", "-m", "aioecho", *sys.argv[1:]],
        )
    except (TargetError, runner.WorkerError) as exc:
        print(f"aioecho bench: {exc}", file=sys.stderr)
        return 1
    except SearchRefused as exc:
        print(f"aioecho bench: --find-max-rate: {exc}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.clear()
    if options.hgrm is not None:
        try:
            with open(options.hgrm, "wb") as hgrm:
                result.latency().write_hgrm(hgrm)
        except OSError as exc:
            print(f"aioecho bench: cannot write {options.hgrm}: {exc.strerror}", file=sys.stderr)
            return 1
    print(
        report.to_json(result)
        if options.json
        else report.to_table(result, timeline=options.timeline)
    )
    if result.steps:
        return 0 if result.max_rate is not None else 1
    return 0 if result.ok else 1
