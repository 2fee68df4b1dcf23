"""Guard aioecho's speed: its CPU per round trip against the floor and against C.

``python benchmarks/speed.py`` starts, side by side, aioecho on uvloop and on
the stdlib loop (in both builds when a compiled build exists: as installed,
and with ``AIOECHO_NO_EXTENSIONS=1``), the minimal Python protocol
(``servers/minimal_protocol.py``) on both loops, and the C server
``c/echo_server``. For each load it then runs rounds: in each round every
server in turn is driven by the C load client ``c/echo_load``, the order
rotated from round to round, so that the servers see the same machine. It
prints each server's CPU per round trip (user + system from
``/proc/PID/stat`` over the client's measured window), round trips/s, the
client's own CPU, and the ratios to the C server and to the minimal protocol
on the same loop, each ratio taken within a round and shown as the median
(lowest-highest) over the rounds. Only these ratios compare across runs; the
absolute figures drift with whatever else the machine does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The suite's package lives beside this script, which runs as a file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import cprograms
from suite.cli import Parser, at_least_two, positive_float
from suite.measure import c_sample
from suite.model import Load, Sample, Spread, size_label
from suite.servers import BASELINES, HOST, SERVERS, ServerProcess, ServerSpec, running

NO_EXTENSIONS = {"AIOECHO_NO_EXTENSIONS": "1"}
C_SERVER = "C server"
LOADS = (Load(10, 64, 1), Load(1000, 64, 1), Load(10, 16384, 16))


@dataclass(frozen=True)
class ProgramSpec(ServerSpec):
    """A server that is a program of its own rather than a Python script.

    The C server takes ``-h``/``-p`` and listens with a queue of 4096, the
    suite's backlog.
    """

    @property
    def command(self) -> list[str]:
        return [*self.args, "-h", HOST, "-p", "0"]


@dataclass(frozen=True)
class Contender:
    """A server of the comparison, and the minimal protocol it is held against."""

    spec: ServerSpec
    floor: str | None  # the name of the minimal protocol on the same loop


def minimal(loop: str) -> ServerSpec:
    script = str(BASELINES / "minimal_protocol.py")
    return ServerSpec(f"minimal {loop}", f"minimal protocol, {loop}", (script, "--loop", loop))


def aioecho_builds() -> tuple[list[tuple[str, dict[str, str]]], str]:
    """The builds of aioecho to compare (a label and the environment of each), and
    a sentence saying what ``aioecho.COMPILED`` showed in a child process."""
    installed, forced = compiled_flag({}), compiled_flag(NO_EXTENSIONS)
    if installed == "missing":
        return [("", {})], (
            "aioecho has no COMPILED attribute: one build only (AIOECHO_NO_EXTENSIONS=1 "
            "would run the same code), measured once"
        )
    if installed != "True":
        return [("", {})], (
            "aioecho.COMPILED is False: no compiled build here, so AIOECHO_NO_EXTENSIONS=1 "
            "runs the same pure-Python code, measured once"
        )
    note = "aioecho.COMPILED is True; with AIOECHO_NO_EXTENSIONS=1 it is " + forced
    if forced != "False":
        note += " (the variable did not force pure Python)"
    return [(" compiled", {}), (" pure", NO_EXTENSIONS)], note


def compiled_flag(env: dict[str, str]) -> str:
    """``aioecho.COMPILED`` as a child process with ``env`` sees it: True, False or missing."""
    probe = "import aioecho; print(getattr(aioecho, 'COMPILED', 'missing'))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return done.stdout.strip()


def contenders() -> tuple[list[Contender], str]:
    """Every server of the comparison, C first, and the note on aioecho's builds."""
    builds, note = aioecho_builds()
    chosen = [
        Contender(ProgramSpec(C_SERVER, "C epoll server", (str(cprograms.SERVER),)), None),
        Contender(minimal("uvloop"), None),
        Contender(minimal("asyncio"), None),
    ]
    for loop in ("uvloop", "asyncio"):
        base = SERVERS[f"aioecho-{loop}"]
        for label, env in builds:
            spec = dataclasses.replace(base, name=f"aioecho {loop}{label}", env=env)
            chosen.append(Contender(spec, f"minimal {loop}"))
    return chosen, note


@contextlib.contextmanager
def all_running(specs: Sequence[ServerSpec]) -> Iterator[dict[str, ServerProcess]]:
    """Every server started (and stopped on the way out), by name."""
    with contextlib.ExitStack() as stack:
        yield {spec.name: stack.enter_context(running(spec)) for spec in specs}


def rounds(
    servers: dict[str, ServerProcess], load: Load, options: argparse.Namespace
) -> list[Round]:
    """``options.repeats`` rounds of every server under ``load``, the order rotated."""
    names, done = list(servers), []
    for number in range(options.repeats):
        shift = number % len(names)
        results: Round = {}
        for name in names[shift:] + names[:shift]:
            results[name] = c_sample(servers[name], load, options.duration, options.warmup)
        done.append(results)
    return done


Round = dict[str, Sample | str]  # one round: each server's sample, or why it failed
Reading = Callable[[Round], float | None]


def reading(name: str, field: str) -> Reading:
    """``field`` of ``name``'s sample in a round, ``None`` where it failed or lacks it."""

    def read(results: Round) -> float | None:
        sample = results[name]
        return None if isinstance(sample, str) else getattr(sample, field)

    return read


def ratio(field: str, name: str, other: str) -> Reading:
    """``name``'s ``field`` over ``other``'s, within one round."""

    def read(results: Round) -> float | None:
        top, bottom = reading(name, field)(results), reading(other, field)(results)
        return None if top is None or not bottom else top / bottom

    return read


def text(spread: Spread | None, fmt: Callable[[float], str]) -> str:
    """``median (lowest-highest)`` over the rounds."""
    if spread is None:
        return "n/a"
    low, median, high = fmt(spread.low), fmt(spread.median), fmt(spread.high)
    return median if low == high else f"{median} ({low}-{high})"


def table(load: Load, chosen: list[Contender], runs: list[Round]) -> str:
    """One Markdown table: a row per server, the ratios taken within each round."""
    header = [
        "server",
        "CPU µs/rt",
        "round trips/s",
        "client cores",
        "CPU ÷ C",
        "CPU ÷ minimal",
        "rt/s ÷ C",
        "rt/s ÷ minimal",
    ]

    def over(read: Reading, fmt: Callable[[float], str]) -> str:
        return text(Spread.of(read(results) for results in runs), fmt)

    def times(value: float) -> str:
        return f"{value:.2f}x"

    rows = []
    for contender in chosen:
        name, floor = contender.spec.name, contender.floor
        failures = [results[name] for results in runs if isinstance(results[name], str)]
        row = [
            name + (f" ({len(failures)} failed: {failures[0]})" if failures else ""),
            over(reading(name, "cpu_us_per_rt"), lambda v: f"{v:.1f}"),
            over(reading(name, "rps"), lambda v: f"{v / 1000:.1f}k"),
            over(reading(name, "client_cpu"), lambda v: f"{v:.2f}"),
            over(ratio("cpu_us_per_rt", name, C_SERVER), times),
            over(ratio("cpu_us_per_rt", name, floor), times) if floor else "",
            over(ratio("rps", name, C_SERVER), times),
            over(ratio("rps", name, floor), times) if floor else "",
        ]
        rows.append(row)
    title = (
        f"{load.connections} connections, {size_label(load.size)} lines, {load.pipeline} in flight"
    )
    others = Spread.of(
        sample.other_load
        for results in runs
        for sample in results.values()
        if isinstance(sample, Sample)
    )
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"Other processes kept {text(others, lambda v: f'{v:.1f}')} cores busy."]
    return "\n".join(lines)


def parser() -> Parser:
    cli = Parser(prog="speed.py", description=__doc__.split("\n\n")[0])
    cli.add_argument("--repeats", type=at_least_two, default=3, help="rounds per load (3)")
    cli.add_argument("--duration", type=positive_float, default=1.0, help="measured s (1)")
    cli.add_argument("--warmup", type=positive_float, default=0.3, help="warm-up s (0.3)")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if (why := cprograms.build()) is not None:
        print(f"speed.py: needs the C programs: {why}", file=sys.stderr)
        return 2
    chosen, note = contenders()
    print(
        f"{options.repeats} alternating rounds of {options.duration:g} s (after "
        f"{options.warmup:g} s of warm-up) per load; client: benchmarks/c/echo_load. {note}.",
        flush=True,
    )
    print(
        "Ratios are taken within each round, then shown as median (lowest-highest); "
        "CPU ÷ minimal compares with the minimal protocol on the same loop.\n",
        flush=True,
    )
    with all_running([contender.spec for contender in chosen]) as servers:
        for load in LOADS:
            print(table(load, chosen, rounds(servers, load, options)) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
