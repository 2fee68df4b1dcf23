"""What the suite measures: cells of the matrix, one sample per repeat, a cell's outcome.

Everything here turns into JSON and back, so that the report and the plots
can be made again from a results file.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.load import Load

Status = Literal["ok", "failed", "not run"]
# The reason of a cell not run because its server failed a lighter load.
AFTER_FAILURE = "already failed at "
# A client that used this much of a core in any repeat may have been the
# limit, not the server: such a cell is flagged and never ranked.
CLIENT_BOUND = 0.9


@dataclass(frozen=True, order=True)
class Cell:
    """One server under one load."""

    server: str
    load: Load


@dataclass(frozen=True)
class Sample:
    """One repeat of a cell.

    ``cpu_us_per_rt`` is the server's CPU time (user + system, every process
    of the server) per round trip while measuring; ``rss_per_conn`` is the
    server's resident memory with the connections open under load, less its
    memory before any connection, per connection, in bytes. Either is
    ``None`` when it could not be sampled. ``client_cpu`` is how many cores
    the load client itself used while measuring (from :data:`CLIENT_BOUND` on
    it may be the limit; ``None`` when unknown); ``other_load`` is how many
    cores the rest of the machine kept busy meanwhile.
    """

    rps: float
    latency_us: dict[str, float | None]
    cpu_us_per_rt: float | None
    rss_per_conn: float | None
    client_cpu: float | None
    other_load: float
    errors: int
    bench: dict[str, Any] = field(repr=False)  # the load client's whole JSON result


@dataclass(frozen=True)
class Outcome:
    """A cell's result: its samples, or why it failed or did not run."""

    cell: Cell
    status: Status
    reason: str = ""
    samples: tuple[Sample, ...] = ()

    @property
    def broken(self) -> bool:
        """The server failed this cell, or a lighter one so that this one was not run."""
        return self.status == "failed" or self.reason.startswith(AFTER_FAILURE)

    @property
    def client_bound(self) -> bool:
        """The client used :data:`CLIENT_BOUND` of a core or more in some repeat."""
        return any(
            sample.client_cpu is not None and sample.client_cpu >= CLIENT_BOUND
            for sample in self.samples
        )

    def spread(self, metric: Callable[[Sample], float | None]) -> Spread | None:
        """Median, min and max of ``metric`` over the samples that have it."""
        return Spread.of(metric(sample) for sample in self.samples)


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements and their range."""

    median: float
    low: float
    high: float
    count: int

    def overlaps(self, other: Spread) -> bool:
        """The two ranges share a value: the difference between them may be noise."""
        return self.low <= other.high and other.low <= self.high

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread | None:
        known = sorted(value for value in values if value is not None)
        if not known:
            return None
        return cls(statistics.median(known), known[0], known[-1], len(known))


# Metrics the report and the plots read from a sample, by name.
METRICS: dict[str, Callable[[Sample], float | None]] = {
    "rps": lambda s: s.rps,
    "p50": lambda s: s.latency_us.get("p50"),
    "p99": lambda s: s.latency_us.get("p99"),
    "p999": lambda s: s.latency_us.get("p999"),
    "cpu": lambda s: s.cpu_us_per_rt,
    "rss": lambda s: s.rss_per_conn,
    "client": lambda s: s.client_cpu,
    "others": lambda s: s.other_load,
}


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    """A JSON-ready dictionary; the load's fields sit beside the server's name."""
    return {
        "server": outcome.cell.server,
        **dataclasses.asdict(outcome.cell.load),
        "status": outcome.status,
        "reason": outcome.reason,
        "samples": [dataclasses.asdict(sample) for sample in outcome.samples],
    }


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    """The inverse of :func:`outcome_to_dict`."""
    load = Load(data["connections"], data["size"], data["pipeline"])
    samples = tuple(Sample(**sample) for sample in data["samples"])
    return Outcome(Cell(data["server"], load), data["status"], data["reason"], samples)


@dataclass(frozen=True)
class Run:
    """A whole run of the suite: where, when, with which settings, and every outcome."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    started: str  # UTC, ISO 8601
    elapsed_s: float
    outcomes: tuple[Outcome, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "started": self.started,
            "elapsed_s": self.elapsed_s,
            "cells": [outcome_to_dict(outcome) for outcome in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        outcomes = tuple(outcome_from_dict(cell) for cell in data["cells"])
        return cls(data["machine"], data["settings"], data["started"], data["elapsed_s"], outcomes)

    def servers(self) -> list[str]:
        """The servers of the run, in the order they ran."""
        return list(dict.fromkeys(outcome.cell.server for outcome in self.outcomes))

    def loads(self) -> list[Load]:
        """The loads of the run, sorted."""
        return sorted({outcome.cell.load for outcome in self.outcomes})

    def outcome(self, server: str, load: Load) -> Outcome | None:
        """The outcome of ``server`` under ``load``, if the run had that cell."""
        return self._index.get(Cell(server, load))

    @functools.cached_property
    def _index(self) -> dict[Cell, Outcome]:
        return {outcome.cell: outcome for outcome in self.outcomes}
