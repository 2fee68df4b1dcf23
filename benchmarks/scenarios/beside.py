"""Greedy pipeliner and invalid UTF-8: ping-pong neighbours alone, then beside one abuser."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from . import neighbours
from .abuser import Abuser
from .model import MIB, Column, Figures, Scenario, Settings, ratio
from .target import HOST, ServerProcess, suffix_of

# The abuser runs this long before the neighbours' second phase starts.
RAMP_S = 0.5
# The abuser stops by itself this long after the phase should have ended.
ABUSER_SLACK_S = 30.0
PIPELINE_LINE = b"p" * 63 + b"\n"  # 64 bytes, like the neighbours' lines
INVALID_UTF8_LINE = b"\xff\n"
INVALID_UTF8_RATE = 2_000_000  # bytes/s


def alone_then_beside(
    server: ServerProcess,
    settings: Settings,
    line: bytes,
    rate: float,
    abusers: int = 1,
    measure: neighbours.Measure = neighbours.measure,
) -> Figures:
    """The neighbours alone, then beside ``abusers`` clients each sending ``line`` at ``rate``
    (0: flat out).

    The two phases alternate ``settings.repeats`` times and each figure is
    the median, so that a burst of other work on the machine shifts one
    phase of one pair rather than the ratio. ``measure`` runs the neighbours
    for a phase.
    """
    suffix = suffix_of(server.spec.args)
    alone: list[neighbours.Neighbours] = []
    beside: list[neighbours.Neighbours] = []
    abused: list[dict[str, Any]] = []
    for _ in range(settings.repeats):
        alone.append(measure(server.port, settings.duration, suffix))
        abuser_seconds = RAMP_S + settings.duration + neighbours.WARMUP_S + ABUSER_SLACK_S
        with contextlib.ExitStack() as stack:
            group = [
                stack.enter_context(Abuser(HOST, server.port, line, rate, abuser_seconds))
                for _ in range(abusers)
            ]
            time.sleep(RAMP_S)
            beside.append(measure(server.port, settings.duration, suffix))
            abused.extend(abuser.stop() for abuser in group)
    typical_alone = neighbours.Neighbours.median(alone)
    typical_beside = neighbours.Neighbours.median(beside)
    seconds = sum(report["seconds"] for report in abused) / abusers  # they run side by side
    return {
        "alone": typical_alone.to_dict(),
        "beside": typical_beside.to_dict(),
        "rps_kept": ratio(typical_beside.rps, typical_alone.rps),
        "p99_factor": ratio(typical_beside.p99_ms, typical_alone.p99_ms),
        "abuser_out_mib_s": sum(report["sent"] for report in abused) / MIB / seconds,
        "abuser_in_mib_s": sum(report["received"] for report in abused) / MIB / seconds,
        "abuser_cpu": sum(report["cpu"] * report["seconds"] for report in abused) / seconds,
        "abuser_closed_by_server": any(report["closed_by_server"] for report in abused),
        "phases": {
            "alone": [phase.to_dict() for phase in alone],
            "beside": [phase.to_dict() for phase in beside],
            "abuser": abused,
        },
    }


NEIGHBOUR_COLUMNS = (
    Column("alone rt/s", "alone.rps", "rps"),
    Column("alone p50 ms", "alone.p50_ms", "ms"),
    Column("alone p99 ms", "alone.p99_ms", "ms"),
    Column("beside rt/s", "beside.rps", "rps"),
    Column("beside p50 ms", "beside.p50_ms", "ms"),
    Column("beside p99 ms", "beside.p99_ms", "ms"),
    Column("rt/s kept", "rps_kept", "percent"),
    Column("p99 factor", "p99_factor", "ratio"),
    Column("abuser MiB/s out", "abuser_out_mib_s", "float"),
    Column("abuser MiB/s in", "abuser_in_mib_s", "float"),
    Column("abuser CPU", "abuser_cpu", "cores"),
    Column("neighbours CPU alone / beside", "alone.client_cpu|beside.client_cpu", "cores"),
    Column("neighbour errors", "alone.errors|beside.errors", "int"),
    Column("server closed abuser", "abuser_closed_by_server", "text"),
)


def beside_neighbours(
    name: str,
    title: str,
    flags: tuple[str, ...],
    line: bytes,
    rate: float,
    abusers: int = 1,
    measure: neighbours.Measure = neighbours.measure,
) -> Scenario:
    """A scenario of the server with ``flags``: :func:`alone_then_beside` with these abusers."""
    return Scenario(
        name=name,
        title=title,
        flags=lambda settings: flags,
        run=lambda server, settings: alone_then_beside(
            server, settings, line, rate, abusers, measure
        ),
        columns=NEIGHBOUR_COLUMNS,
    )


PIPELINER = beside_neighbours(
    "pipeliner",
    "Greedy pipeliner: 10 ping-pong neighbours alone, then beside one client "
    "pipelining 64-byte lines flat out (and reading its replies)",
    (),
    PIPELINE_LINE,
    0,
)

UNICODE = beside_neighbours(
    "unicode",
    "Invalid UTF-8 under --unicode: 10 ping-pong neighbours alone, then beside one "
    "client sending \\xff\\n lines at 2 MB/s (and reading its replies)",
    ("--unicode",),
    INVALID_UTF8_LINE,
    INVALID_UTF8_RATE,
)
