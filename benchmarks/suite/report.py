"""The written report: the JSON record of a run, and its Markdown tables.

Every number in a table is the median of the repeats, with their range in
parentheses when there were several. Ratios compare medians of the same run.
A server is named faster than another only when their ranges of round
trips/s do not overlap, and never in a cell where the client may have been
the limit (marked with a dagger).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from ..core import machine, markdown
from ..core.load import Load, size_label
from .model import CLIENT_BOUND, METRICS, Outcome, Run, Spread

REFERENCE = "aioecho-uvloop"
STDLIB = "aioecho-asyncio"
WORKERS = "aioecho-workers2"
BASELINES = ("streams", "selectors", "select", "threads")
CLIENT_BOUND_MARK = "†"

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
    """What a table shows for one cell: the metric, or why there is none; a
    dagger where the client may have been the limit."""
    if outcome is None:
        return ""
    if outcome.status == "failed":
        return "**failed**"
    if outcome.status == "not run":
        return "not run"
    mark = f" {CLIENT_BOUND_MARK}" if outcome.client_bound else ""
    return spread_text(outcome.spread(METRICS[metric]), fmt) + mark


def median(outcome: Outcome | None, metric: str = "rps") -> float | None:
    """The median of a cell that ran, else ``None``."""
    if outcome is None or outcome.status != "ok":
        return None
    spread = outcome.spread(METRICS[metric])
    return None if spread is None else spread.median


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = markdown.table(header, rows)
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


def unranked_because(outcome: Outcome) -> str | None:
    """Why a cell that passed cannot be ranked, or ``None`` when it can: its client
    may have been the limit, or its client CPU is unknown, or it has no range."""
    if outcome.client_bound:
        return "client-bound"
    if any(sample.client_cpu is None for sample in outcome.samples):
        return "client CPU unknown"
    if len(outcome.samples) < 2:
        return "one repeat"
    return None


def ranking(run: Run, load: Load) -> tuple[list[tuple[str, Spread]], list[str]]:
    """The rankable servers of ``load`` by median round trips/s, fastest first, each
    with its range; and the servers that passed but cannot be ranked, with why."""
    ranked, left_out = [], []
    for server in run.servers():
        outcome = run.outcome(server, load)
        if outcome is None or outcome.status != "ok":
            continue
        spread = outcome.spread(METRICS["rps"])
        if (why := unranked_because(outcome)) is not None:
            left_out.append(f"{server} ({why})")
        elif spread is not None:
            ranked.append((server, spread))
    ranked.sort(key=lambda pair: pair[1].median, reverse=True)
    return ranked, left_out


def verdict(ranked: list[tuple[str, Spread]]) -> tuple[str, str]:
    """Who is fastest, and by how much over the next, or which servers cannot be told apart.

    The first is named only when its range lies wholly above every other's.
    """
    if not ranked:
        return "none rankable", ""
    (first, top), rest = ranked[0], ranked[1:]
    if not rest:
        return f"{first} (alone)", ""
    tied = [server for server, spread in rest if spread.overlaps(top)]
    if tied:
        return "no clear winner: " + ", ".join([first, *tied]) + " overlap", ""
    return first, f"{ratio(top.median, rest[0][1].median)} over {rest[0][0]}"


def winners(run: Run) -> str:
    """The fastest server of each load when the ranges say so, with its lead."""
    rows = []
    for load in run.loads():
        ranked, left_out = ranking(run, load)
        if not ranked and not left_out:
            continue
        fastest, lead = verdict(ranked)
        ranges = ", ".join(f"{server} {spread_text(spread, rate)}" for server, spread in ranked)
        rows.append([load.label, fastest, lead, ranges, ", ".join(left_out)])
    header = ["load", "fastest", "lead (medians)", "round trips/s of the ranked", "not ranked"]
    note = (
        "A server is named fastest only when its range of round trips/s lies wholly above "
        "every other ranked server's; where ranges overlap, the difference may be noise. "
        f"Cells whose client used {CLIENT_BOUND} of a core or more in any repeat "
        f"({CLIENT_BOUND_MARK} in the tables) may have measured the client, cells whose "
        "client CPU could not be measured may have too, and single runs have no range: "
        "none of them is ranked."
    )
    return "## Fastest server per load\n\n" + note + "\n\n" + table(header, rows)


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
        "round trip (lower is leaner), medians of this run: compare them with the ranges "
        "in the tables below before reading a difference into them. Where the client is "
        f"saturated ({CLIENT_BOUND_MARK}) round trips/s cannot separate fast servers; "
        "CPU per round trip still can."
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
        "each server in its own process",
        f"- Load client: {client_note(settings)}",
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


def client_note(settings: dict[str, object]) -> str:
    """Which client ran; runs from before the C client was an option used the harness."""
    note = settings.get("client_note")
    return str(note) if note else "the aioecho harness (Python, in the suite's process)"


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
            "Cores the load client itself used while measuring (the C client's own CPU, or "
            "the harness's event-loop thread). From "
            f"{CLIENT_BOUND} on ({CLIENT_BOUND_MARK}) the client, not the server, may limit "
            "round trips/s: such cells are not ranked.",
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
