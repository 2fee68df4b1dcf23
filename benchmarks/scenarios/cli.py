"""Run abuse scenarios against aioecho on both loops: ``python -m benchmarks abuse``.

Each scenario starts a fresh server (``python -m aioecho serve --loop LOOP
--host 127.0.0.1 --port 0`` with the scenario's flags, then --server-args),
attacks it from 127.0.0.0/8 for a bounded time, and reports what the
neighbours or the server's memory saw. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from aioecho.sockets.limits import raise_open_file_limit

from ..core import machine
from ..core.args import Parser, add_from_json, positive_float, whole_number
from . import report, target
from .beside import PIPELINER, UNICODE
from .faults import FAULT_SCENARIOS
from .memory import AMPLIFICATION, GLOBAL_MEMORY
from .model import Scenario, Settings
from .pause import SUPERVISOR_PAUSE
from .scrapes import SCRAPES
from .slowloris import SLOWLORIS

# One line in ``python -m benchmarks --help``.
SUMMARY = "abuse scenarios against aioecho on both loops: what the neighbours get"
SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        SLOWLORIS,
        PIPELINER,
        AMPLIFICATION,
        GLOBAL_MEMORY,
        UNICODE,
        SCRAPES,
        SUPERVISOR_PAUSE,
        *FAULT_SCENARIOS,
    )
}
LOOPS = ("asyncio", "uvloop")
# (full, --quick) defaults of the size knobs.
SIZES = {
    "duration": (5.0, 1.0),
    "repeats": (3, 1),
    "slow_clients": (100, 20),
    "max_connections": (100, 20),
    "normal_clients": (20, 5),
    "amplifiers": (100, 20),
    "holders": (4000, 200),
    "paced_clients": (300, 50),
}
# Descriptors kept free for the runner itself (pipes, the neighbours' process).
FD_RESERVE = 100


def server_args(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"cannot split {text!r}: {error}") from None


def add_arguments(cli: Parser) -> None:
    """The scenarios, the loops, the size knobs, and what to print."""
    cli.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="repeatable; default: all"
    )
    cli.add_argument("--loop", choices=(*LOOPS, "both"), default="both")
    cli.add_argument("--quick", action="store_true", help="fewer clients, 1 s phases")
    cli.add_argument("--duration", type=positive_float, help="seconds per phase (full: 5)")
    cli.add_argument(
        "--server-args",
        type=server_args,
        default=(),
        metavar="'FLAGS'",
        help="extra flags for every server, e.g. '--line-timeout 3'",
    )
    for knob, what in (
        ("repeats", "pipeliner, unicode: alone/beside pairs, medians reported"),
        ("slow-clients", "slowloris: slow clients"),
        ("max-connections", "slowloris: the server's --max-connections"),
        ("normal-clients", "slowloris: normal clients trying afterwards; pause: clients"),
        ("amplifiers", "amplification, outbox-*, tls-memory: clients that never read"),
        ("holders", "memory: connections holding a partial line"),
        ("paced-clients", "fragment-idle: clients each sending one 64 KiB line"),
    ):
        full = SIZES[knob.replace("-", "_")][0]
        help_text = f"{what} (full: {full})"
        cli.add_argument(f"--{knob}", type=whole_number(1), metavar="N", help=help_text)
    cli.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_from_json(cli, "print the tables of a --json run")


def settings_from(options: argparse.Namespace) -> Settings:
    chosen: dict[str, Any] = {
        knob: getattr(options, knob) or presets[options.quick] for knob, presets in SIZES.items()
    }
    return Settings(server_args=options.server_args, **chosen)


def run_one(scenario: Scenario, loop: str, settings: Settings) -> dict[str, Any]:
    """One scenario on one loop; a failure is a result with its reason, not a crash."""
    flags = (*scenario.flags(settings), *settings.server_args)
    run: dict[str, Any] = {"scenario": scenario.name, "loop": loop, "server_flags": list(flags)}
    try:
        with target.serving(loop, flags) as server:
            run["figures"] = scenario.run(server, settings)
            run["server_death"] = server.death()
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as error:
        return {**run, "status": "failed", "reason": str(error) or type(error).__name__}
    if run["server_death"]:
        return {**run, "status": "failed", "reason": run["server_death"]}
    return {**run, "status": "ok"}


def run_all(
    scenarios: Sequence[Scenario],
    loops: Sequence[str],
    settings: Settings,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    runs = []
    for scenario in scenarios:
        for loop in loops:
            log(f"{scenario.name} on {loop} ...")
            runs.append(run_one(scenario, loop, settings))
            if runs[-1]["status"] != "ok":
                log(f"  failed: {runs[-1]['reason']}")
    return runs


def tables(document: dict[str, Any]) -> str:
    """The heading line and one table per scenario of a run's JSON document."""
    runs = document["runs"]
    names = dict.fromkeys(run["scenario"] for run in runs)
    parts = [f"Machine: {machine.label(document['machine'])}\n"]
    for name in names:
        parts.append(
            report.table(SCENARIOS[name], [run for run in runs if run["scenario"] == name])
        )
    return "\n".join(parts)


def main(options: argparse.Namespace, cli: Parser) -> int:
    """Run the scenarios (or show an earlier run's tables); the exit status."""
    if options.from_json:
        try:
            document = json.loads(options.from_json.read_text())
            print(tables(document), end="")
        except (OSError, ValueError, KeyError) as error:
            cli.error(f"cannot read {options.from_json}: {error}")
        return 0
    settings = settings_from(options)
    limit = raise_open_file_limit()  # the server inherits it
    if settings.holders > limit - FD_RESERVE:
        most = limit - FD_RESERVE
        cli.error(
            f"--holders {settings.holders} is over {most} (the open-file limit less {FD_RESERVE})"
        )
    scenarios = [SCENARIOS[name] for name in options.scenario or SCENARIOS]
    loops = LOOPS if options.loop == "both" else (options.loop,)
    try:
        runs = run_all(scenarios, loops, settings, lambda line: print(line, file=sys.stderr))
    except KeyboardInterrupt:
        print(f"{cli.prog}: interrupted", file=sys.stderr)
        return 130
    document = {"machine": machine.describe(), "settings": asdict(settings), "runs": runs}
    print(json.dumps(document, indent=2) if options.json else tables(document))
    return 0 if all(run["status"] == "ok" for run in runs) else 1
