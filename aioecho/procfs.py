"""What ``/proc`` says of a process (Linux): its CPU time, its resident memory,
its children. Elsewhere, or without permission, every reader says ``None``.

The harness reads a server's figures with these, and so does the benchmark
suite in ``benchmarks/``: one reader of each kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

Figure = TypeVar("Figure", int, float)

PROC = Path("/proc")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# /proc/<pid>/stat: utime and stime are fields 14 and 15 (1-based), counted
# after the parenthesised command name, which may itself hold spaces.
UTIME_AFTER_COMM = 11


def rss_bytes(pid: int | str = "self") -> int | None:
    """The resident set size of process ``pid``, or ``None`` if it cannot be read."""
    try:
        fields = (PROC / str(pid) / "statm").read_text().split()
        return int(fields[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User plus system CPU seconds process ``pid`` has used, or ``None``."""
    return _stat_seconds(PROC / str(pid) / "stat")


def thread_cpu_seconds(tid: int) -> float | None:
    """User plus system CPU seconds one thread of this process has used, or ``None``."""
    return _stat_seconds(PROC / "self" / "task" / str(tid) / "stat")


def summed(read: Callable[[int], Figure | None], pids: Iterable[int]) -> Figure | None:
    """``read``'s figure summed over ``pids``: ``None`` when there are none or one is unreadable."""
    figures = [read(pid) for pid in pids]
    known = [figure for figure in figures if figure is not None]
    if not known or len(known) < len(figures):
        return None
    return sum(known)


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(_children(current))
    return found


def _stat_seconds(stat_file: Path) -> float | None:
    try:
        stat = stat_file.read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[UTIME_AFTER_COMM]) + int(fields[UTIME_AFTER_COMM + 1])
    except (OSError, IndexError, ValueError):
        return None
    return ticks / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    # Only the main thread's children: reading every thread's list would cost
    # 10,000 reads per sample for a thread-per-connection server, and servers
    # start their worker processes from the main thread.
    try:
        return [
            int(child)
            for child in (PROC / str(pid) / "task" / str(pid) / "children").read_text().split()
        ]
    except (OSError, ValueError):
        return []
