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

``--clients`` compares the load clients instead: the harness (``python -m
aioecho bench --processes 1``, in each build, closed loop, and open loop at
80% of the C client's round trips/s) against the C client, both driving the
C server, at 10, 1,000 and 10,000 connections, in alternating rounds: round
trips/s and the client's CPU per round trip, each as a ratio to the C
client's in the same round.

``--instructions`` counts instead, with callgrind, the instructions each
Python server spends per line (one connection, 64-byte lines one at a time
and 16 KiB lines 16 at a time): a figure that the machine's noise cannot
blur, for the part of the work that is the server's own code.
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

from suite import clients, cprograms, instructions
from suite.cli import Parser, at_least_two, positive_float
from suite.measure import c_sample
from suite.model import Load, Sample, Spread, size_label
from suite.servers import BASELINES, HOST, SERVERS, ServerProcess, ServerSpec, running

NO_EXTENSIONS = {"AIOECHO_NO_EXTENSIONS": "1"}
C_SERVER = "C server"
LOADS = (Load(10, 64, 1), Load(1000, 64, 1), Load(10, 16384, 16))
CLIENT_LOADS = (Load(10, 64, 1), Load(1000, 64, 1), Load(10_000, 64, 1))
# One connection each: callgrind counts the server's work, not the kernel's.
# How 16 KiB lines fall into reads varies from run to run, and with it the
# work: many lines make that vary less than the per-line work adds up.
COUNTED_LOADS = ((Load(1, 64, 1), 2000), (Load(1, 16384, 16), 1600))


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


def instruction_table(chosen: list[Contender]) -> str:
    """A Markdown table of instructions per line, and each over the minimal protocol's."""
    counted = {
        contender.spec.name: [
            instructions.per_line(contender.spec, load, lines) for load, lines in COUNTED_LOADS
        ]
        for contender in chosen
        if not isinstance(contender.spec, ProgramSpec)
    }
    header = ["server"] + [
        f"{size_label(load.size)} lines, {load.pipeline} in flight" for load, _ in COUNTED_LOADS
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for contender in chosen:
        name, floor = contender.spec.name, contender.floor
        if name not in counted:
            continue
        cells = [
            f"{mine:,.0f}" + (f" ({mine / counted[floor][i]:.2f}x minimal)" if floor else "")
            for i, mine in enumerate(counted[name])
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def harnesses(builds: list[tuple[str, dict[str, str]]]) -> list[clients.Harness]:
    """The harness in each build, closed loop, then the first build in open loop."""
    closed = [clients.Harness(f"harness{label}", env) for label, env in builds]
    label, env = builds[0]
    return [*closed, clients.Harness(f"harness{label}, open loop at 80%", env, open_loop=True)]


def clients_table(load: Load, names: list[str], runs: list[clients.Round]) -> str:
    """One Markdown table: a row per client, ratios to the C client within each round."""
    header = ["client", "round trips/s", "CPU µs/rt", "rt/s ÷ C", "CPU ÷ C", "p50 µs", "p99 µs"]

    def over(name: str, read: Callable[[clients.ClientRun], float | None]) -> Spread | None:
        values = (read(results[name]) for results in runs if not results[name].failure)
        return Spread.of(value for value in values if value is not None)

    def within(name: str, field: str) -> Spread | None:
        def ratio(results: clients.Round) -> float | None:
            mine = getattr(results[name], field)
            theirs = getattr(results[clients.C_CLIENT], field)
            return mine / theirs if mine and theirs else None

        return Spread.of(r for r in map(ratio, runs) if r is not None)

    def times(value: float) -> str:
        return f"{value:.2f}x"

    lines = [f"### {load.connections:,} connections, {size_label(load.size)} lines, closed loop"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        failures = [r[name].failure for r in runs if name in r and r[name].failure]
        held = over(name, lambda run: run.rate_held)
        label = name + (f" (rate held: {text(held, lambda v: f'{v:.1%}')})" if held else "")
        label += f" ({len(failures)} failed: {failures[0]})" if failures else ""
        rows = [
            label,
            text(over(name, lambda run: run.rps), lambda v: f"{v / 1000:.1f}k"),
            text(over(name, lambda run: run.cpu_us_per_rt), lambda v: f"{v:.2f}"),
            text(within(name, "rps"), times) if name != clients.C_CLIENT else "",
            text(within(name, "cpu_us_per_rt"), times) if name != clients.C_CLIENT else "",
            text(over(name, lambda run: run.p50_us), lambda v: f"{v:,.0f}"),
            text(over(name, lambda run: run.p99_us), lambda v: f"{v:,.0f}"),
        ]
        lines.append("| " + " | ".join(rows) + " |")
    return "\n".join(lines)


def compare_clients(options: argparse.Namespace, note: str) -> int:
    builds, _ = aioecho_builds()
    chosen = harnesses(builds)
    names = [clients.C_CLIENT, *(spec.name for spec in chosen)]
    print(
        f"{options.repeats} rounds of {options.duration:g} s (after {options.warmup:g} s of "
        f"warm-up) per load, on the C server; one harness process. {note}.",
        flush=True,
    )
    print(
        "Ratios are taken within each round, then shown as median (lowest-highest); the "
        "open-loop harness runs at 80% of the C client's round trips/s of its round.\n",
        flush=True,
    )
    server_spec = ProgramSpec(C_SERVER, "C epoll server", (str(cprograms.SERVER),))
    with running(server_spec) as server:
        for load in CLIENT_LOADS:
            runs = clients.rounds(
                server.port, load, chosen, options.repeats, options.duration, options.warmup
            )
            print(clients_table(load, names, runs) + "\n", flush=True)
    return 0


def parser() -> Parser:
    cli = Parser(prog="speed.py", description=__doc__.split("\n\n")[0])
    cli.add_argument("--repeats", type=at_least_two, default=3, help="rounds per load (3)")
    cli.add_argument("--duration", type=positive_float, default=1.0, help="measured s (1)")
    cli.add_argument("--warmup", type=positive_float, default=0.3, help="warm-up s (0.3)")
    cli.add_argument(
        "--clients",
        action="store_true",
        help="compare the harness with the C load client instead of the servers",
    )
    cli.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per line with callgrind instead of timing rounds",
    )
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if (why := cprograms.build()) is not None:
        print(f"speed.py: needs the C programs: {why}", file=sys.stderr)
        return 2
    chosen, note = contenders()
    if options.clients:
        return compare_clients(options, note)
    if options.instructions:
        return count_instructions(chosen, note)
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


def count_instructions(chosen: list[Contender], note: str) -> int:
    if (why := instructions.available()) is not None:
        print(f"speed.py: --instructions needs callgrind: {why}", file=sys.stderr)
        return 2
    print(
        "Instructions per line in user space (callgrind; the kernel's share is not counted), "
        f"one connection. {note}.\n",
        flush=True,
    )
    print(instruction_table(chosen), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
