"""What ``python -m aioecho bench`` does once its flags are read: one run,
repeated runs or an A/B comparison; the table or JSON; the gates; the exit
code (0 passed, 1 a run or gate failed, 2 a usage error).

It imports the harness, and so needs the ``bench`` extra: :mod:`aioecho.cli.bench`
imports it only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..bench import report, runner
from ..bench.config import BenchConfig, BenchConfigError
from ..bench.gates import Gate, figures_of, load_baseline, parse_regression, regressions
from ..bench.progress import ProgressLine
from ..bench.repeats import Comparison, Repeated, compare, document, repeat, to_text
from ..bench.result import BenchResult
from ..bench.search import SearchRefused
from ..bench.target import TargetError

# Runs per side of a comparison when --repeat does not say.
COMPARE_REPEATS = 3


def execute(
    config: BenchConfig, options: argparse.Namespace, parser: argparse.ArgumentParser
) -> int:
    """Run what the options ask for, print it, and return the exit code."""
    try:
        gates = [Gate.parse(text) for text in options.fail_if or ()]  # none given: None
        baseline = None if options.baseline is None else load_baseline(options.baseline)
        allowed = parse_regression(options.max_regression)
        other = None if options.compare is None else _other_target(config, options.compare)
        if config.find_max_rate is not None and (other is not None or options.repeat > 1):
            raise BenchConfigError(
                "--find-max-rate repeats its own steps: no --repeat or --compare"
            )
    except BenchConfigError as exc:
        parser.error(str(exc))
    try:
        outcome = _measure(config, other, options)
    except (TargetError, runner.WorkerError) as exc:
        print(f"aioecho bench: {exc}", file=sys.stderr)
        return 1
    except SearchRefused as exc:
        print(f"aioecho bench: --find-max-rate: {exc}", file=sys.stderr)
        return 2
    if options.hgrm is not None and not _write_hgrm(outcome, options.hgrm):
        return 1
    return _report(outcome, options, gates, baseline, allowed)


Outcome = BenchResult | Repeated | Comparison


def _measure(
    config: BenchConfig, other: BenchConfig | None, options: argparse.Namespace
) -> Outcome:
    command = ["python", "-m", "aioecho", *sys.argv[1:]]
    progress = ProgressLine(sys.stdout, config.connections) if sys.stdout.isatty() else None

    def run_once(step: BenchConfig) -> BenchResult:
        return runner.run(step, on_progress=progress, handle_interrupt=True, command=command)

    try:
        if other is not None:
            times = options.repeat if options.repeat > 1 else COMPARE_REPEATS
            return compare(config, other, times, run_once)
        if options.repeat > 1:
            return repeat(config, options.repeat, run_once)
        return run_once(config)
    finally:
        if progress is not None:
            progress.clear()


def _other_target(config: BenchConfig, text: str) -> BenchConfig:
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit():
        raise BenchConfigError(f"--compare {text!r}: write HOST:PORT, like 127.0.0.1:8089")
    return dataclasses.replace(config, host=host, port=int(port))


def _write_hgrm(outcome: Outcome, path: str) -> bool:
    latency = outcome.latency() if isinstance(outcome, BenchResult) else None
    if latency is None:
        print("aioecho bench: --hgrm writes the histogram of a single run", file=sys.stderr)
        return False
    try:
        with open(path, "wb") as hgrm:
            latency.write_hgrm(hgrm)
    except OSError as exc:
        print(f"aioecho bench: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return False
    return True


def _report(
    outcome: Outcome,
    options: argparse.Namespace,
    gates: list[Gate],
    baseline: dict[str, float | None] | None,
    allowed: float,
) -> int:
    if isinstance(outcome, BenchResult):
        data: dict[str, Any] = outcome.to_dict()
        text = report.to_table(outcome, timeline=options.timeline)
        passed = outcome.max_rate is not None if outcome.steps else outcome.ok
    else:
        data, text, passed = document(outcome), to_text(outcome), outcome.ok
    figures = figures_of(data)
    failed = [why for gate in gates if (why := gate.failure(figures)) is not None]
    if baseline is not None:
        failed += regressions(figures, baseline, allowed)
    data["gates"] = failed
    lines = [f"gate failed: {why}" for why in failed]
    print(json.dumps(data, separators=(",", ":")) if options.json else "\n".join([text, *lines]))
    return 0 if passed and not failed else 1
