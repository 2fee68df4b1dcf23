"""The written report: the JSON record of a run, and its Markdown tables.

Every number in a table is the median of the repeats, with their range in
parentheses when there were several. Ratios compare medians of the same run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from . import machine
from .model import METRICS, Load, Outcome, Run, Spread, size_label

REFERENCE = "aioecho-uvloop"
STDLIB = "aioecho-asyncio"
WORKERS = "aioecho-workers2"
BASELINES = ("streams", "selectors", "select", "threads")

Format = Callable[[float], str]


def to_json(run: Run) -> str:
    """Compact, one cell per line: small enough to commit, still diffable."""
    data = run.to_dict()
    cells = ",\n".join(json.dumps(cell, separators=(",", ":")) for cell in data.pop("cells"))
    head = json.dumps(data, separators=(",", ":"))[:-1]
    return f'{head},"cells":[\n{cells}\n]}}\n'


def from_json(text: str) -> Run:
    return Run.from_dict(json.loads(text))


def rate(value: float) -> str:
    """Round trips per second, compactly: ``57.9k``."""
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def ms(value_us: float) -> str:
    """Microseconds shown as milliseconds, three significant digits."""
    return f"{value_us / 1000:.3g}"


def one_decimal(value: float) -> str:
    return f"{value:.1f}"


def kib(value: float) -> str:
    return f"{value / 1024:.1f}"


def spread_text(spread: Spread | None, fmt: Format) -> str:
    """``median (low-high)``, or just the median of a single repeat."""
    if spread is None:
        return "n/a"
    if spread.count == 1 or fmt(spread.low) == fmt(spread.high):
        return fmt(spread.median)
    return f"{fmt(spread.median)} ({fmt(spread.low)}-{fmt(spread.high)})"


def cell_text(outcome: Outcome | None, metric: str, fmt: Format) -> str:
    """What a table shows for one cell: the metric, or why there is none."""
    if outcome is None:
        return ""
    if outcome.status == "failed":
        return "**failed**"
    if outcome.status == "not run":
        return "not run"
    return spread_text(outcome.spread(METRICS[metric]), fmt)


def median(outcome: Outcome | None, metric: str = "rps") -> float | None:
    """The median of a cell that ran, else ``None``."""
    if outcome is None or outcome.status != "ok":
        return None
    spread = outcome.spread(METRICS[metric])
    return None if spread is None else spread.median


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def shapes(run: Run) -> list[tuple[int, int]]:
    """The (size, pipeline) pairs of the run: one table each."""
    return sorted({(load.size, load.pipeline) for load in run.loads()})


def connection_counts(run: Run) -> list[int]:
    return sorted({load.connections for load in run.loads()})


def grid(run: Run, metric: str, fmt: Format, size: int, pipeline: int) -> str:
    """Servers down, connection counts across, for one line size and pipeline depth."""
    counts = connection_counts(run)
    rows = [
        [server]
        + [
            cell_text(run.outcome(server, Load(count, size, pipeline)), metric, fmt)
            for count in counts
        ]
        for server in run.servers()
    ]
    return table(["server", *(f"{count} conns" for count in counts)], rows)


def grids(run: Run, title: str, metric: str, fmt: Format, note: str) -> str:
    parts = [f"## {title}", note]
    for size, pipeline in shapes(run):
        parts += [
            f"### {size_label(size)} lines, pipeline {pipeline}",
            grid(run, metric, fmt, size, pipeline),
        ]
    return "\n\n".join(parts)


def best(run: Run, load: Load, servers: Iterable[str]) -> tuple[str, float] | None:
    """The server with the most round trips/s under ``load``, among ``servers``."""
    ran = [(server, median(run.outcome(server, load))) for server in servers]
    known = [(server, value) for server, value in ran if value is not None]
    return max(known, key=lambda pair: pair[1]) if known else None


def ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def winners(run: Run) -> str:
    """The fastest server of each load, and by how much it beats the next."""
    rows = []
    for load in run.loads():
        first = best(run, load, run.servers())
        if first is None:
            continue
        others = [server for server in run.servers() if server != first[0]]
        second = best(run, load, others)
        margin = ratio(first[1], second[1]) if second else "n/a"
        rows.append([load.label, first[0], rate(first[1]), second[0] if second else "", margin])
    header = ["load", "fastest", "round trips/s", "runner-up", "lead"]
    return "## Fastest server per load\n\n" + table(header, rows)


def standings(run: Run) -> str:
    """aioecho against the best baseline, against itself on the stdlib loop, with workers."""
    rows = []
    baselines = [server for server in run.servers() if server in BASELINES]
    for load in run.loads():
        ours = median(run.outcome(REFERENCE, load))
        top = best(run, load, baselines)
        our_cpu = median(run.outcome(REFERENCE, load), "cpu")
        lean = leanest(run, load, baselines)
        rows.append(
            [
                load.label,
                rate(ours) if ours is not None else "n/a",
                f"{top[0]} {rate(top[1])}" if top else "n/a",
                ratio(ours, top[1] if top else None),
                ratio(ours, median(run.outcome(STDLIB, load))),
                ratio(median(run.outcome(WORKERS, load)), ours),
                one_decimal(our_cpu) if our_cpu is not None else "n/a",
                f"{lean[0]} {one_decimal(lean[1])}" if lean else "n/a",
                ratio(median(run.outcome(STDLIB, load), "cpu"), our_cpu),
            ]
        )
    header = [
        "load",
        REFERENCE,
        "best baseline",
        "aioecho ÷ best baseline",
        "uvloop ÷ stdlib loop",
        "workers 2 ÷ 1",
        "aioecho CPU µs/rt",
        "leanest baseline",
        "stdlib ÷ uvloop CPU",
    ]
    note = (
        "Round trips/s and their ratios (higher favours the first), then server CPU per "
        "round trip (lower is leaner), medians of this run. Where the client is saturated "
        "(see the client CPU table) round trips/s cannot separate fast servers; CPU per "
        "round trip still can."
    )
    return "## aioecho's standing\n\n" + note + "\n\n" + table(header, rows)


def leanest(run: Run, load: Load, servers: Iterable[str]) -> tuple[str, float] | None:
    """The server with the least CPU per round trip under ``load``, among ``servers``."""
    ran = [(server, median(run.outcome(server, load), "cpu")) for server in servers]
    known = [(server, value) for server, value in ran if value is not None]
    return min(known, key=lambda pair: pair[1]) if known else None


def failures(run: Run) -> str:
    rows = [
        [outcome.cell.server, outcome.cell.load.label, outcome.status, outcome.reason]
        for outcome in run.outcomes
        if outcome.status != "ok"
    ]
    if not rows:
        return "## Failures\n\nEvery cell ran and passed."
    return "## Failures and cells not run\n\n" + table(["server", "load", "status", "reason"], rows)


def header(run: Run, plots: Iterable[Path]) -> str:
    settings = run.settings
    lines = [
        f"# Benchmark results, {run.started}",
        "",
        f"- Machine: {machine.label(run.machine)}",
        f"- aioecho {run.machine.get('aioecho')}, commit {run.machine.get('commit')}",
        f"- Preset `{settings['preset']}`: {settings['repeats']} repeat(s) of "
        f"{settings['duration']:g} s measured after {settings['warmup']:g} s of warm-up, "
        "one client process (the aioecho harness), each server in its own process",
        f"- Took {run.elapsed_s / 60:.1f} minutes",
        "- Cells: median of the repeats (min-max in parentheses); **failed** means the server "
        "could not take the load (reasons at the end)",
    ]
    others = Spread.of(s.other_load for o in run.outcomes for s in o.samples)
    if others is not None:
        lines.append(
            f"- Other processes kept {others.median:.1f} cores busy in the median cell "
            f"(at most {others.high:.1f}): see the last table"
        )
    lines += [f"- Plot: [{path.name}]({path.name})" for path in plots]
    return "\n".join(lines)


def to_markdown(run: Run, plots: Iterable[Path] = ()) -> str:
    """The whole report."""
    sections = [
        header(run, plots),
        winners(run),
        standings(run),
        grids(run, "Round trips per second", "rps", rate, "Higher is better."),
        grids(run, "p99 latency (ms)", "p99", ms, "Lower is better."),
        grids(run, "p99.9 latency (ms)", "p999", ms, "Lower is better."),
        grids(
            run,
            "Server CPU per round trip (µs)",
            "cpu",
            one_decimal,
            "User + system time of the server's processes over the measured window.",
        ),
        grids(
            run,
            "Server memory per connection (KiB)",
            "rss",
            kib,
            "(peak resident memory with the connections open - memory before the first "
            "connection) ÷ connections. Noisy at 10 connections, where a few pages dominate.",
        ),
        grids(
            run,
            "Client CPU (cores)",
            "client",
            lambda value: f"{value:.2f}",
            "How busy the harness's one client process was while measuring: near 1.00 the "
            "client, not the server, limits round trips/s.",
        ),
        grids(
            run,
            "Other load on the machine (cores)",
            "others",
            one_decimal,
            "CPU the rest of the machine used while a cell ran, in cores (of "
            f"{run.machine.get('cores')}): a high value means the cell competed with other work.",
        ),
        failures(run),
    ]
    return "\n\n".join(sections) + "\n"
