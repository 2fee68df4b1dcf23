"""What ``speed`` prints: Markdown tables of ratios taken within each round."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..core import markdown
from ..core.load import Load, size_label
from ..core.servers import ServerProcess
from ..suite.measure import c_sample
from ..suite.model import Sample, Spread
from . import clients, instructions
from .contenders import C_SERVER, Contender, ProgramSpec

# One connection each: callgrind counts the server's work, not the kernel's.
# How 16 KiB lines fall into reads varies from run to run, and with it the
# work: many lines make that vary less than the per-line work adds up.
COUNTED_LOADS = ((Load(1, 64, 1), 2000), (Load(1, 16384, 16), 1600))


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
    lines = [f"### {title}", "", *markdown.table(header, rows)]
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
    lines = markdown.table(header, [])
    for contender in chosen:
        name, floor = contender.spec.name, contender.floor
        if name not in counted:
            continue
        cells = [
            f"{mine:,.0f}" + (f" ({mine / counted[floor][i]:.2f}x minimal)" if floor else "")
            for i, mine in enumerate(counted[name])
        ]
        lines.append(markdown.row([name, *cells]))
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
    lines += ["", *markdown.table(header, [])]
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
        lines.append(markdown.row(rows))
    return "\n".join(lines)
