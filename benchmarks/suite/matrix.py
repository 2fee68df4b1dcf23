"""The matrix: which servers under which loads, measured how long and how often.

Three presets: the full matrix of the report, ``--quick`` (the shape of the
results in about two minutes) and ``--smoke`` (seconds, for CI: proves the
suite still runs end to end). Every preset repeats each cell, so that every
number has a range. Flags override any preset's dimension.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..core.load import Load
from .model import Cell
from .servers import SERVERS

ALL_SERVERS = tuple(SERVERS)


@dataclass(frozen=True)
class Matrix:
    """What to run.

    ``duration`` must cover at least two of the harness's half-second progress
    reports when the harness is the client, which is when the server's CPU
    time and memory are sampled. ``client`` is ``c`` (benchmarks/c/echo_load),
    ``python`` (the harness) or ``auto`` (the C client when it can be built).
    """

    servers: tuple[str, ...]
    connections: tuple[int, ...]
    sizes: tuple[int, ...]
    pipelines: tuple[int, ...]
    repeats: int
    duration: float
    warmup: float
    budget: float | None = None  # seconds after which no further cell starts
    client: str = "auto"

    def cells(self) -> list[Cell]:
        """Every cell, lightest loads first, servers innermost.

        The servers under one load run back to back, so that the ratios
        between them see the same state of the machine; the heaviest loads
        (10,000 connections of 16 KiB lines, where one repeat can take half a
        minute) come last, where a time budget cuts them rather than the rest.
        """
        loads = itertools.product(self.connections, self.sizes, self.pipelines)
        return [Cell(server, Load(*load)) for load in sorted(loads) for server in self.servers]


PRESETS: dict[str, Matrix] = {
    "full": Matrix(
        servers=ALL_SERVERS,
        connections=(10, 100, 1000, 10000),
        sizes=(64, 1024, 16384),
        pipelines=(1, 16),
        repeats=3,
        duration=1.5,
        warmup=0.5,
        budget=25 * 60,  # about half an hour on a two-core machine, the last cell included
    ),
    "quick": Matrix(
        servers=ALL_SERVERS,
        connections=(10, 1000, 2000),
        sizes=(64,),
        pipelines=(1,),
        repeats=3,
        duration=1.0,
        warmup=0.3,
    ),
    "smoke": Matrix(
        servers=("aioecho-uvloop", "select"),
        connections=(10,),
        sizes=(64,),
        pipelines=(1,),
        repeats=2,
        duration=1.0,
        warmup=0.2,
    ),
}
