"""What a scenario is, the settings every scenario reads, and how its figures are shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.servers import ServerProcess


@dataclass(frozen=True)
class Settings:
    """One run's knobs; ``--quick`` shrinks the defaults."""

    duration: float  # seconds per measured phase (or of holding, for slowloris)
    repeats: int  # alone/beside pairs of phases; medians are reported
    server_args: tuple[str, ...]  # extra server flags from the user, for every scenario
    slow_clients: int
    max_connections: int
    normal_clients: int
    amplifiers: int
    holders: int
    paced_clients: int


@dataclass(frozen=True)
class Column:
    """One column of a scenario's table: its heading, the figure's key, how to print it."""

    header: str
    key: str
    style: str = "int"  # int, rps, ms, float, ratio, percent, cores, text


# Columns more than one scenario shows.
CLIENTS = Column("clients", "clients")
SENT = Column("sent MiB", "sent_mib", "float")
CLIENT_CPU = Column("client CPU", "client_cpu", "cores")
RSS_BEFORE = Column("RSS before MiB", "rss_before_mib", "float")
RSS_PEAK = Column("RSS peak MiB", "rss_peak_mib", "float")
GROWTH = Column("growth MiB", "growth_mib", "float")
REFUSED = Column("refused", "refused", "text")


Figures = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """An attack: the server flags it needs, how to run it, what it reports."""

    name: str
    title: str
    flags: Callable[[Settings], tuple[str, ...]]
    run: Callable[[ServerProcess, Settings], Figures]
    columns: tuple[Column, ...]


def ratio(after: float | None, before: float | None) -> float | None:
    """``after ÷ before``, or ``None`` when there is nothing to divide by."""
    if after is None or not before:
        return None
    return after / before


MIB = 1024 * 1024


def mib(count: float) -> float:
    return count / MIB
