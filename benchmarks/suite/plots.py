"""The plots of a run, as PNG files beside its report (matplotlib, Agg backend).

Each server keeps one colour in every plot. A cell a server failed, or did
not run because the server failed a lighter load, is drawn as a cross on the
bottom edge at its connection count, so that where a baseline breaks stays
visible instead of its line just ending.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI; before pyplot

import matplotlib.pyplot as plt
from matplotlib import ticker
from matplotlib.transforms import blended_transform_factory

from . import machine
from .model import Load, Run, size_label
from .report import connection_counts, median, shapes

DPI = 90
# Percentiles of the latency distribution plot, as the harness reports them.
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99}
DISTRIBUTION_CONNECTIONS = 1000


def write_all(run: Run, stem: Path) -> list[Path]:
    """Every plot of ``run`` as ``<stem>-<name>.png``; the paths written."""
    plots: dict[str, Callable[[Any], bool]] = {
        "rps": lambda fig: _by_connections(fig, run, "rps", "round trips/s", 1.0),
        "p99": lambda fig: _by_connections(fig, run, "p99", "p99 latency (ms)", 1e-3, log=True),
        "latency": lambda fig: _distribution(fig, run),
        "memory": lambda fig: _by_connections(
            fig, run, "rss", "server memory per connection (KiB)", 1 / 1024, log=True
        ),
    }
    written = []
    for name, draw in plots.items():
        figure = _figure(run)
        if draw(figure):
            path = stem.with_name(f"{stem.name}-{name}.png")
            figure.savefig(path, dpi=DPI)
            written.append(path)
        plt.close(figure)
    return written


def _figure(run: Run) -> Any:
    rows = len({pipeline for _, pipeline in shapes(run)})
    columns = len({size for size, _ in shapes(run)})
    width = max(4.2 * columns + 2.2, 7.5)  # room for the two-line title
    figure = plt.figure(figsize=(width, 3.2 * rows + 0.9), layout="constrained")
    return figure


def _axes(figure: Any, run: Run) -> dict[tuple[int, int], Any]:
    """One subplot per (size, pipeline): sizes across, pipeline depths down."""
    sizes = sorted({size for size, _ in shapes(run)})
    pipelines = sorted({pipeline for _, pipeline in shapes(run)})
    grid = figure.subplots(len(pipelines), len(sizes), squeeze=False)
    axes = {}
    for row, pipeline in enumerate(pipelines):
        for column, size in enumerate(sizes):
            ax = grid[row][column]
            ax.set_title(f"{size_label(size)} lines, pipeline {pipeline}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            axes[(size, pipeline)] = ax
    return axes


def _colours(run: Run) -> dict[str, Any]:
    palette = plt.get_cmap("tab10")
    return {server: palette(number % 10) for number, server in enumerate(run.servers())}


def _by_connections(
    figure: Any, run: Run, metric: str, label: str, scale: float, log: bool = False
) -> bool:
    """A metric against connection count (log scale), one line per server."""
    colours, counts = _colours(run), connection_counts(run)
    for (size, pipeline), ax in _axes(figure, run).items():
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        crosses = dict.fromkeys(counts, 0)
        for server in run.servers():
            points, failed = [], []
            for count in counts:
                outcome = run.outcome(server, Load(count, size, pipeline))
                value = median(outcome, metric)
                if value is not None and value > 0:
                    points.append((count, value * scale))
                elif outcome is not None and outcome.broken:
                    failed.append(count)
            colour = colours[server]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", color=colour, label=server)
            for count in failed:
                height = 0.03 + 0.05 * crosses[count]  # servers failing at one count stack up
                crosses[count] += 1
                ax.plot(count, height, "x", markersize=8, mew=2, color=colour, transform=bottom)
        ax.set_xscale("log")
        ax.set_xticks(counts, [f"{count:g}" for count in counts])
        ax.minorticks_off()
        if log:
            _log_y(ax)
        else:
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel(label)
    _finish(
        figure,
        run,
        f"{label} by connection count; x on the bottom edge: the server failed (there or lighter)",
    )
    return True


def _distribution(figure: Any, run: Run) -> bool:
    """Latency by percentile at 1000 connections (or the nearest count run)."""
    counts = connection_counts(run)
    count = min(counts, key=lambda c: abs(c - DISTRIBUTION_CONNECTIONS))
    colours = _colours(run)
    for (size, pipeline), ax in _axes(figure, run).items():
        for server in run.servers():
            outcome = run.outcome(server, Load(count, size, pipeline))
            if outcome is None or outcome.status != "ok":
                continue
            points = [
                (100 / (100 - percentile), value / 1000)
                for key, percentile in PERCENTILES.items()
                if (value := _median_latency(outcome, key)) is not None
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", color=colours[server], label=server)
        ax.set_xscale("log")
        _log_y(ax)
        ticks = list(PERCENTILES.values())
        ax.set_xticks([100 / (100 - p) for p in ticks], [f"{p:g}%" for p in ticks])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
    _finish(figure, run, f"latency distribution at {count} connections")
    return True


def _log_y(ax: Any) -> None:
    """A log y axis labelled at 1, 2 and 5 of each decade, in plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _median_latency(outcome: Any, key: str) -> float | None:
    spread = outcome.spread(lambda sample: sample.latency_us.get(key))
    return None if spread is None else spread.median


def _finish(figure: Any, run: Run, title: str) -> None:
    figure.suptitle(f"{title}\n{machine.label(run.machine)}", fontsize=9)
    handles, labels = {}, []
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    figure.legend([handles[label] for label in labels], labels, loc="outside right center")
