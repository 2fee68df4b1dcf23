"""The load harness against the C load client, both driving the C server.

Each round runs, in an order that rotates from round to round: the C client
``echo_load``; the harness (``python -m aioecho bench --processes 1``) in
each of its builds, closed loop; and the harness in open loop at 80% of the
round trips/s the C client reached in that round. Every run is its own
process on the same C server, so the figures compare the clients alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..core import cprograms
from ..core.load import Load

US_PER_S = 1_000_000
# The open-loop rate, as a share of what the C client reached closed loop.
OPEN_LOOP_SHARE = 0.8
C_CLIENT = "C client"
# Connecting 10,000 takes the harness a few seconds: it is not measured.
SLACK_S = 60.0


@dataclass(frozen=True)
class ClientRun:
    """What one run of a client measured, or why it failed (``failure``)."""

    rps: float = 0.0
    cpu_us_per_rt: float | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    rate: float | None = None  # open loop: the rate asked for
    failure: str | None = None

    @property
    def rate_held(self) -> float | None:
        """Open loop: the round trips/s reached over the rate asked for."""
        return self.rps / self.rate if self.rate else None


@dataclass(frozen=True)
class Harness:
    """One way of running the harness: a name, its environment, closed or open loop."""

    name: str
    env: Mapping[str, str]
    open_loop: bool = False


def c_client(port: int, load: Load, duration: float, warmup: float) -> ClientRun:
    run = cprograms.run_load(port, load, duration, warmup)
    if not run.passed or run.result is None:
        return ClientRun(failure=run.failure())
    result = run.result
    latency = result["latency_us"]
    return ClientRun(
        rps=result["rps"],
        cpu_us_per_rt=result["cpu_s"] / result["messages"] * US_PER_S,
        p50_us=latency["p50"],
        p99_us=latency["p99"],
    )


def harness(
    port: int,
    load: Load,
    duration: float,
    warmup: float,
    env: Mapping[str, str],
    rate: float | None,
) -> ClientRun:
    command = [
        *(sys.executable, "-m", "aioecho", "bench", "--port", str(port)),
        *("--connections", str(load.connections), "--size", str(load.size)),
        *("--duration", f"{duration:g}", "--warmup", f"{warmup:g}", "--processes", "1", "--json"),
        *(("--rate", f"{rate:.0f}") if rate else ("--pipeline", str(load.pipeline))),
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + warmup + SLACK_S,
            env={**os.environ, **env},
            check=False,
        )
        result = json.loads(done.stdout)
    except (subprocess.TimeoutExpired, ValueError) as exc:
        return ClientRun(failure=f"the harness failed: {exc}")
    if not result["messages"]:
        return ClientRun(failure=f"the harness failed: {done.stderr.strip()[-200:]}")
    latency = result["latency_us"]
    return ClientRun(
        rps=result["rps"],
        cpu_us_per_rt=result["client_cpu_us_per_rt"],
        p50_us=latency["p50"],
        p99_us=latency["p99"],
        rate=rate,
    )


Round = dict[str, ClientRun]


def rounds(
    port: int,
    load: Load,
    harnesses: Sequence[Harness],
    repeats: int,
    duration: float,
    warmup: float,
) -> list[Round]:
    """``repeats`` rounds of every client under ``load``, the order rotated.

    An open-loop harness runs after the C client of its round, whose rate it
    takes a share of.
    """
    done: list[Round] = []
    for number in range(repeats):
        closed = [C_CLIENT, *(h.name for h in harnesses if not h.open_loop)]
        shift = number % len(closed)
        results: Round = {}
        for name in closed[shift:] + closed[:shift]:
            if name == C_CLIENT:
                results[name] = c_client(port, load, duration, warmup)
            else:
                spec = next(h for h in harnesses if h.name == name)
                results[name] = harness(port, load, duration, warmup, spec.env, None)
        rate = results[C_CLIENT].rps * OPEN_LOOP_SHARE
        for spec in harnesses:
            if spec.open_loop and rate:
                results[spec.name] = harness(port, load, duration, warmup, spec.env, rate)
        done.append(results)
    return done
