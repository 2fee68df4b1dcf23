"""Well-behaved neighbours: ping-pong clients measured by aioecho's own harness.

They run as ``python -m aioecho bench`` in a process of their own, one
64-byte line in flight per connection, so the figures are the harness's
(verified replies, HDR latency) and the client's CPU is reported beside
them: near 1.0 core, the neighbours' own process is the limit.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .target import HOST

CONNECTIONS = 10
LINE_BYTES = 64
WARMUP_S = 0.5
# The harness connects, warms up, measures, closes: give it this much more.
SLACK_S = 30.0


@dataclass(frozen=True)
class Neighbours:
    """What the ping-pong neighbours measured in one phase."""

    rps: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu: float
    errors: int  # connections that failed to open, were lost, or got a wrong reply

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def median(cls, phases: Sequence[Neighbours]) -> Neighbours:
        """Each figure's median over several phases; errors are summed, not lost."""
        return cls(
            rps=statistics.median(phase.rps for phase in phases),
            p50_ms=_median([phase.p50_ms for phase in phases]),
            p99_ms=_median([phase.p99_ms for phase in phases]),
            client_cpu=statistics.median(phase.client_cpu for phase in phases),
            errors=sum(phase.errors for phase in phases),
        )


def measure(port: int, seconds: float, suffix: str) -> Neighbours:
    """Run the neighbours for ``seconds`` (after a short warm-up) and return their figures."""
    command = [
        sys.executable, "-m", "aioecho", "bench",
        "--host", HOST, "--port", str(port),
        "--connections", str(CONNECTIONS), "--size", str(LINE_BYTES), "--pipeline", "1",
        "--duration", str(seconds), "--warmup", str(WARMUP_S),
        "--processes", "1", "--suffix", suffix, "--json",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + WARMUP_S + SLACK_S, check=False
    )
    if not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"neighbours failed (exit status {done.returncode}): {last}")
    result = json.loads(done.stdout)
    latency = result["latency_us"]
    return Neighbours(
        rps=result["rps"],
        p50_ms=_ms(latency["p50"]),
        p99_ms=_ms(latency["p99"]),
        client_cpu=result["client_cpu"],
        errors=sum(result["connect_errors"].values()) + result["errors"] + result["mismatches"],
    )


def _median(values: Sequence[float | None]) -> float | None:
    """The median of the phases that measured anything (none: ``None``)."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / 1000
