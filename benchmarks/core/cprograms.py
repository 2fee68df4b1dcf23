"""The C programs of benchmarks/c: built when a compiler is present, then run.

``echo_load`` is the load client that ranks servers: single-threaded C, it
costs a fraction of the CPU per round trip the Python harness does, so the
server, not the client, is the limit. ``echo_server`` is the reference server
of ``python -m benchmarks speed``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import Load

C_DIR = Path(__file__).resolve().parent.parent / "c"
LOAD_CLIENT = C_DIR / "echo_load"
SERVER = C_DIR / "echo_server"
# echo_load gives up on a connect after 5 s; beyond the run's own length,
# this much more means it hangs, and the cell fails instead of the suite.
SLACK_S = 30.0


@functools.cache
def build() -> str | None:
    """Build the C programs, or bring them up to date: why they cannot be used, or ``None``."""
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None or shutil.which("make") is None:
        return f"no C compiler ({compiler}) and make here to build {C_DIR.name}/"
    done = subprocess.run(
        ["make", "-s", "-C", str(C_DIR)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        return f"building benchmarks/c failed: {lines[-1]}"
    return None


@dataclass(frozen=True)
class LoadRun:
    """What one run of ``echo_load`` printed: its JSON result (``None`` if it printed
    none), its first complaint on stderr, and whether it passed."""

    result: dict[str, Any] | None
    complaint: str
    passed: bool

    def failure(self) -> str:
        """What went wrong, in one line."""
        if self.result is None:
            return f"the C load client failed: {self.complaint or 'no result'}"
        result, parts = self.result, []
        if result["connected"] < result["connections"]:
            parts.append(f"{result['connected']}/{result['connections']} connected")
        if result["errors"]:
            parts.append(f"{result['errors']} connections failed")
        if result["mismatches"]:
            parts.append(f"{result['mismatches']} wrong replies")
        if not result["messages"]:
            parts.append("no round trip completed")
        where = f" ({self.complaint})" if self.complaint else ""
        return (", ".join(parts) or "the C load client reported a failure") + where


def run_load(port: int, load: Load, duration: float, warmup: float) -> LoadRun:
    """Drive 127.0.0.1:``port`` with ``echo_load`` under ``load``; blocks until it is done."""
    command = [
        str(LOAD_CLIENT),
        *("-h", "127.0.0.1", "-p", str(port)),
        *("-c", str(load.connections), "-s", str(load.size), "-k", str(load.pipeline)),
        *("-d", f"{duration:g}", "-w", f"{warmup:g}"),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + warmup + SLACK_S
        )
    except subprocess.TimeoutExpired:
        return LoadRun(None, f"did not finish in {duration + warmup + SLACK_S:g} s", False)
    complaints = done.stderr.strip().splitlines()
    complaint = complaints[0] if complaints else ""
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return LoadRun(None, complaint or f"exit status {done.returncode}", False)
    return LoadRun(result, complaint, done.returncode == 0)
