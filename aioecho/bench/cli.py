"""``python -m aioecho bench``: flags generated from :class:`BenchConfig`.

Importing this module must not need the ``bench`` extra: the main parser
registers the subcommand on every start. The engine is imported when the
command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..loops import LoopUnavailableError, resolve_loop
from ..options import add_flags, from_flags
from .config import BenchConfig, BenchConfigError

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
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(bench_parser=parser)


def main(options: argparse.Namespace) -> int:
    """Run the parsed ``bench`` command; the exit code (1 on any failure)."""
    parser: argparse.ArgumentParser = options.bench_parser
    try:
        config = from_flags(BenchConfig, options)
        resolve_loop(config.loop)
        if config.spawns_server:
            resolve_loop(config.server_loop)
    except (BenchConfigError, LoopUnavailableError) as exc:
        parser.error(str(exc))
    try:
        from . import report, runner
        from .progress import ProgressLine
        from .target import TargetError
    except ImportError as exc:
        print(f"aioecho bench: {EXTRA_MISSING} ({exc})", file=sys.stderr)
        return 1
    progress = ProgressLine(sys.stdout, config.connections) if sys.stdout.isatty() else None
    try:
        result = runner.run(config, on_progress=progress, handle_interrupt=True)
    except (TargetError, runner.WorkerError) as exc:
        print(f"aioecho bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.clear()
    print(report.to_json(result) if options.json else report.to_table(result))
    return 0 if result.ok else 1
