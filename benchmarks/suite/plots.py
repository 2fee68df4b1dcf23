"""The plots of a run, as PNG files beside its report (matplotlib, Agg backend).

Each server keeps one colour in every plot. Every point is the median of the
repeats with an error bar from the lowest to the highest; a hollow point is
a cell whose client may have been the limit. Round trips/s sit on a linear
axis from zero; latency and memory on axes labelled as logarithmic. A cell
a server failed, or did not run because the server failed a lighter load,
is never a point: it is a cross in a separate strip under the plot, one row
per server, so that where a baseline breaks stays visible and cannot be read
as a measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI; before pyplot

import matplotlib.pyplot as plt
from matplotlib import ticker

from ..core import machine
from ..core.load import Load, size_label
from .model import METRICS, Outcome, Run, Spread
from .report import connection_counts, shapes

DPI = 90
# Percentiles of the latency distribution plot, as the harness reports them.
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99}
DISTRIBUTION_CONNECTIONS = 1000
# The failure strip's height, as a share of the plot above it.
STRIP_SHARE = 0.28


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
    return plt.figure(figsize=(width, 4.0 * rows + 0.9), layout="constrained")


def _axes(figure: Any, run: Run, strips: bool = False) -> dict[tuple[int, int], Any]:
    """One subplot per (size, pipeline): sizes across, pipeline depths down.

    With ``strips``, each subplot is a pair: the plot, and under it a thin
    strip sharing its x axis, for the failures (see :func:`_failure_strip`).
    """
    sizes = sorted({size for size, _ in shapes(run)})
    pipelines = sorted({pipeline for _, pipeline in shapes(run)})
    per_shape = 2 if strips else 1
    grid = figure.subplots(
        len(pipelines) * per_shape,
        len(sizes),
        squeeze=False,
        sharex="col",
        height_ratios=[1.0, STRIP_SHARE] * len(pipelines) if strips else None,
    )
    axes = {}
    for row, pipeline in enumerate(pipelines):
        for column, size in enumerate(sizes):
            ax = grid[row * per_shape][column]
            ax.set_title(f"{size_label(size)} lines, pipeline {pipeline}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            axes[(size, pipeline)] = (ax, grid[row * per_shape + 1][column]) if strips else ax
    return axes


def _colours(run: Run) -> dict[str, Any]:
    palette = plt.get_cmap("tab10")
    return {server: palette(number % 10) for number, server in enumerate(run.servers())}


def _error_bar(ax: Any, points: list[tuple[int, Spread]], scale: float, **style: Any) -> None:
    """Medians joined by a line, each with a bar from the lowest to the highest repeat."""
    xs = [count for count, _ in points]
    ys = [spread.median * scale for _, spread in points]
    below = [(spread.median - spread.low) * scale for _, spread in points]
    above = [(spread.high - spread.median) * scale for _, spread in points]
    ax.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=3, **style)


def _by_connections(
    figure: Any, run: Run, metric: str, label: str, scale: float, log: bool = False
) -> bool:
    """A metric against connection count (log scale), one line per server."""
    colours, counts = _colours(run), connection_counts(run)
    for (size, pipeline), (ax, strip) in _axes(figure, run, strips=True).items():
        failed: dict[str, list[int]] = {}
        for server in run.servers():
            points, hollow = [], []
            for count in counts:
                outcome = run.outcome(server, Load(count, size, pipeline))
                spread = _spread(outcome, metric)
                if spread is not None and spread.median > 0:
                    points.append((count, spread))
                    if outcome is not None and outcome.client_bound:
                        hollow.append((count, spread))
                elif outcome is not None and outcome.broken:
                    failed.setdefault(server, []).append(count)
            colour = colours[server]
            if points:
                _error_bar(ax, points, scale, color=colour, label=server)
            if hollow:  # drawn over the filled points: client-bound, not ranked
                _error_bar(ax, hollow, scale, color=colour, markerfacecolor="white", ls="none")
        ax.set_xscale("log")
        ax.set_xticks(counts, [f"{count:g}" for count in counts])
        ax.minorticks_off()
        if log:
            _log_y(ax)
            ax.set_ylabel(f"{label}, log scale")
        else:
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
            ax.set_ylabel(label)
        ax.tick_params(labelbottom=False)
        _failure_strip(strip, failed, colours, counts)
    _finish(
        figure,
        run,
        f"{label} by connection count: median and range of the repeats; "
        "hollow: client-bound (not ranked)",
    )
    return True


def _failure_strip(
    strip: Any, failed: dict[str, list[int]], colours: dict[str, Any], counts: list[int]
) -> None:
    """The cells that failed (or were not run after a lighter failure): a cross per
    cell, one row per server, with no value axis to misread."""
    for row, (server, where) in enumerate(failed.items()):
        strip.plot(where, [row] * len(where), "x", markersize=8, mew=2, color=colours[server])
    strip.set_yticks(range(len(failed)), list(failed), fontsize=7)
    strip.set_ylim(-0.7, max(len(failed), 1) - 0.3)
    if not failed:
        strip.text(0.5, 0.5, "no failures", transform=strip.transAxes, ha="center", va="center")
    strip.set_ylabel("failed", fontsize=8)
    strip.set_xscale("log")
    strip.set_xticks(counts, [f"{count:g}" for count in counts])
    strip.minorticks_off()
    strip.set_xlabel("concurrent connections")


def _spread(outcome: Outcome | None, metric: str) -> Spread | None:
    """The metric's median and range in a cell that passed, else ``None``."""
    if outcome is None or outcome.status != "ok":
        return None
    return outcome.spread(METRICS[metric])


def _distribution(figure: Any, run: Run) -> bool:
    """Latency by percentile at 1000 connections (or the nearest count run), each
    percentile's range over the repeats as a band."""
    counts = connection_counts(run)
    count = min(counts, key=lambda c: abs(c - DISTRIBUTION_CONNECTIONS))
    colours = _colours(run)
    for (size, pipeline), ax in _axes(figure, run).items():
        for server in run.servers():
            outcome = run.outcome(server, Load(count, size, pipeline))
            if outcome is None or outcome.status != "ok":
                continue
            points = [
                (100 / (100 - percentile), spread)
                for key, percentile in PERCENTILES.items()
                if (spread := _latency(outcome, key)) is not None
            ]
            if not points:
                continue
            xs = [x for x, _ in points]
            colour = colours[server]
            medians = [spread.median / 1000 for _, spread in points]
            ax.plot(xs, medians, marker="o", color=colour, label=server)
            lows = [spread.low / 1000 for _, spread in points]
            highs = [spread.high / 1000 for _, spread in points]
            ax.fill_between(xs, lows, highs, color=colour, alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        _log_y(ax)
        ticks = list(PERCENTILES.values())
        ax.set_xticks([100 / (100 - p) for p in ticks], [f"{p:g}%" for p in ticks])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms), log scale")
    _finish(figure, run, f"latency distribution at {count} connections: median, band = range")
    return True


def _log_y(ax: Any) -> None:
    """A log y axis labelled at 1, 2 and 5 of each decade, in plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _latency(outcome: Outcome, key: str) -> Spread | None:
    return outcome.spread(lambda sample: sample.latency_us.get(key))


def _finish(figure: Any, run: Run, title: str) -> None:
    figure.suptitle(f"{title}\n{machine.label(run.machine)}", fontsize=9)
    handles, labels = {}, []
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    figure.legend([handles[label] for label in labels], labels, loc="outside right center")
