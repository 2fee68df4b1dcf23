"""``python -m benchmarks matrix``: run the matrix, write the JSON, the tables and the plots."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..core import machine
from ..core.args import (
    Parser,
    add_from_json,
    at_least_two,
    names_of,
    positive_float,
    positive_ints,
)
from . import html, report
from .claims import CLAIMS, run_claims
from .claims import to_markdown as claims_markdown
from .matrix import PRESETS, Matrix
from .measure import choose_client, run_cell
from .model import AFTER_FAILURE, Cell, Outcome, Run
from .servers import SERVERS

# One line in ``python -m benchmarks --help``.
SUMMARY = "servers under loads: the JSON, the tables, the plots (or --claims, measured)"
RESULTS = Path(__file__).resolve().parent.parent / "results"
# Lines longer than this exceed aioecho's default --max-line and the streams
# baseline's readline() limit: they would measure a protocol error.
MAX_SIZE = 65536
CLAIMS_TITLE = "aioecho: the claims, measured"
PLOTS_MISSING = "matplotlib is missing: pip install -e '.[report]' (or pass --no-plots)"


claim_names = names_of("claim", CLAIMS)
server_names = names_of("server", SERVERS)


def add_arguments(cli: Parser) -> None:
    """The matrix's flags: a preset, its dimensions, the client, where results go."""
    preset = cli.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="reduced matrix, about a minute")
    preset.add_argument("--smoke", action="store_true", help="two servers, seconds (for CI)")
    preset.add_argument(
        "--claims",
        nargs="?",
        const=",".join(CLAIMS),
        type=claim_names,
        metavar="NAMES",
        help=f"measure the claims of the tutorial and of uvloop, with verdicts "
        f"(default all: {', '.join(CLAIMS)}); about 10 minutes",
    )
    cli.add_argument("--servers", type=server_names, help=f"comma list of: {', '.join(SERVERS)}")
    cli.add_argument("--connections", type=positive_ints, help="comma list, e.g. 10,1000")
    cli.add_argument("--sizes", type=positive_ints, help="line sizes in bytes, e.g. 64,1k,16k")
    cli.add_argument("--pipelines", type=positive_ints, help="requests in flight, e.g. 1,16")
    cli.add_argument(
        "--repeats", type=at_least_two, help="runs per cell, 2 or more (median + range)"
    )
    cli.add_argument("--duration", type=positive_float, help="measured seconds per run")
    cli.add_argument("--warmup", type=positive_float, help="unmeasured seconds before each run")
    cli.add_argument(
        "--budget",
        type=positive_float,
        metavar="SECONDS",
        help="start no cell after this long; the rest are reported as not run (full matrix: 1500)",
    )
    cli.add_argument(
        "--client",
        choices=("auto", "c", "python"),
        default="auto",
        help="the load client: the C one in benchmarks/c, the Python harness, "
        "or auto (C when a compiler can build it)",
    )
    cli.add_argument("--out", type=Path, metavar="DIR", help=f"where results go ({RESULTS})")
    cli.add_argument("--no-plots", action="store_true", help="write JSON and Markdown only")
    add_from_json(cli, "remake the report and plots of FILE (beside it, or in --out)")


def matrix_from(options: argparse.Namespace) -> tuple[str, Matrix]:
    """The preset the flags name, with every dimension the flags give replaced."""
    name = "smoke" if options.smoke else "quick" if options.quick else "full"
    changes = {
        field: getattr(options, field)
        for field in (
            "servers",
            "connections",
            "sizes",
            "pipelines",
            "duration",
            "warmup",
            "budget",
        )
        if getattr(options, field) is not None
    }
    if options.repeats is not None:
        changes["repeats"] = options.repeats
    return name, dataclasses.replace(PRESETS[name], client=options.client, **changes)


def skip_reason(cell: Cell, done: Sequence[Outcome], deadline: float | None) -> str | None:
    """Why ``cell`` is not worth running: the budget is spent, or its server
    already failed under a load no heavier in any dimension."""
    if deadline is not None and time.monotonic() > deadline:
        return "not started: the time budget of the run (--budget) was spent"
    for outcome in done:
        lighter = outcome.cell.load
        heavier = cell.load
        if (
            outcome.cell.server == cell.server
            and outcome.status == "failed"
            and lighter.connections <= heavier.connections
            and lighter.size <= heavier.size
            and lighter.pipeline <= heavier.pipeline
        ):
            return f"{AFTER_FAILURE}{lighter.label}: {outcome.reason}"
    return None


def run_matrix(matrix: Matrix, log: Callable[[str], None]) -> list[Outcome]:
    """Every cell in order; never raises for a server's failure."""
    cells, done = matrix.cells(), list[Outcome]()
    started = time.monotonic()
    deadline = None if matrix.budget is None else started + matrix.budget
    for number, cell in enumerate(cells, 1):
        reason = skip_reason(cell, done, deadline)
        outcome = Outcome(cell, "not run", reason) if reason else run_cell(cell, matrix)
        done.append(outcome)
        elapsed = time.monotonic() - started
        where = f"[{number}/{len(cells)} {elapsed:4.0f}s] {cell.server}, {cell.load.label}"
        log(f"{where}: {summary(outcome)}")
    return done


def summary(outcome: Outcome) -> str:
    if outcome.status != "ok":
        return f"{outcome.status.upper()}: {outcome.reason}"
    rps, p99 = report.median(outcome, "rps"), report.median(outcome, "p99")
    return f"{report.rate(rps or 0)} rt/s, p99 {report.ms(p99 or 0)} ms"


def output_dir(options: argparse.Namespace) -> Path:
    """``--out``; else beside the file ``--from-json`` remakes; else benchmarks/results."""
    if options.out is not None:
        return Path(options.out)
    return options.from_json.parent if options.from_json is not None else RESULTS


def write(run: Run, out: Path, stem: str, plots: bool) -> list[Path]:
    """The JSON, the plots and the Markdown that links them; the paths written."""
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(report.to_json(run))
    images: list[Path] = []
    if plots:
        from . import plots as plotting  # matplotlib loads only when plots are wanted

        images = plotting.write_all(run, out / stem)
    markdown = report.to_markdown(run, images)
    md_path.write_text(markdown)
    html_path = out / f"{stem}.html"
    html_path.write_text(html.to_html(markdown, f"aioecho benchmarks {stem}", out))
    return [json_path, md_path, html_path, *images]


def write_claims(options: argparse.Namespace, out: Path) -> list[Path]:
    """Measure the claims; their JSON, Markdown and HTML."""
    now, where = datetime.now(UTC), machine.describe()
    started = time.monotonic()
    claims = run_claims(options.claims, lambda line: print(line, file=sys.stderr, flush=True))
    stem = now.strftime("%Y%m%d-%H%M%SZ") + "-claims"
    document = {
        "machine": where,
        "started": now.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "claims": [claim.to_dict() for claim in claims],
    }
    header = (
        f"# The claims, measured ({document['started']})\n\n"
        f"Machine: {machine.label(where)}; commit {where['commit']}; "
        f"{document['elapsed_s']:.0f} s in all. Each run: the harness, one client process, "
        "a server in a child process, warm-up 0.5 s, window 2 s.\n"
    )
    markdown = claims_markdown(claims, header)
    paths = [out / f"{stem}.{kind}" for kind in ("json", "md", "html")]
    paths[0].write_text(json.dumps(document, indent=1) + "\n")
    paths[1].write_text(markdown)
    paths[2].write_text(html.to_html(markdown, CLAIMS_TITLE, out))
    return paths


def main(options: argparse.Namespace, cli: Parser) -> int:
    """Measure (or remake from ``--from-json``) and write the results; the exit status."""
    plots = not options.no_plots
    if plots and importlib.util.find_spec("matplotlib") is None:
        print(f"{cli.prog}: {PLOTS_MISSING}", file=sys.stderr)
        return 2
    out = output_dir(options)
    out.mkdir(parents=True, exist_ok=True)  # fail now, not after half an hour of measuring
    if options.claims is not None:
        for path in write_claims(options, out):
            print(path)
        return 0
    if options.from_json is not None:
        run, stem = report.from_json(options.from_json.read_text()), options.from_json.stem
    else:
        name, matrix = matrix_from(options)
        try:
            client, note = choose_client(matrix.client)
        except RuntimeError as exc:
            print(f"{cli.prog}: {exc}", file=sys.stderr)
            return 2
        print(f"load client: {note}", file=sys.stderr, flush=True)
        run, stem = measure(name, dataclasses.replace(matrix, client=client), note)
    written = write(run, out, stem, plots)
    for path in written:
        print(path)
    if options.smoke and any(outcome.status != "ok" for outcome in run.outcomes):
        print(f"{cli.prog}: a smoke cell did not pass", file=sys.stderr)
        return 1
    return 0


def measure(name: str, matrix: Matrix, client_note: str) -> tuple[Run, str]:
    """Run the matrix; the run and the timestamp that names its files."""
    now, where = datetime.now(UTC), machine.describe()  # the commit as the run starts
    started = time.monotonic()
    outcomes = run_matrix(matrix, lambda line: print(line, file=sys.stderr, flush=True))
    settings = {"preset": name, **dataclasses.asdict(matrix), "client_note": client_note}
    run = Run(
        machine=where,
        settings=settings,
        started=now.isoformat(timespec="seconds"),
        elapsed_s=round(time.monotonic() - started, 1),
        outcomes=tuple(outcomes),
    )
    return run, now.strftime("%Y%m%d-%H%M%SZ")
