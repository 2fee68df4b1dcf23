"""A server's CPU time and resident memory, read from /proc (Linux).

A server may be several processes (``--workers``), so every figure is the
sum over the process and its descendants. A process that vanishes between
listing and reading simply counts no more.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# /proc/<pid>/stat: utime and stime are fields 14 and 15 (1-based), counted
# after the parenthesised command name, which may itself hold spaces.
UTIME_AFTER_COMM = 11


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(_children(current))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU seconds the processes have used so far."""
    return sum(_stat_ticks(PROC / str(pid) / "stat") for pid in pids) / TICKS_PER_S


def thread_cpu_seconds(tid: int) -> float:
    """User plus system CPU seconds one thread of this process has used so far."""
    return _stat_ticks(PROC / "self" / "task" / str(tid) / "stat") / TICKS_PER_S


def _stat_ticks(stat_file: Path) -> int:
    """utime + stime of a ``stat`` file, in clock ticks; 0 once the process is gone."""
    try:
        stat = stat_file.read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[UTIME_AFTER_COMM]) + int(fields[UTIME_AFTER_COMM + 1])


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of the processes (VmRSS), in bytes."""
    total = 0
    for pid in pids:
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024  # reported in kB
                break
    return total


def _children(pid: int) -> list[int]:
    # Only the main thread's children: reading every thread's list would cost
    # 10,000 reads per sample for the thread-per-connection server, and the
    # servers here start their worker processes from the main thread.
    try:
        return [
            int(child)
            for child in (PROC / str(pid) / "task" / str(pid) / "children").read_text().split()
        ]
    except OSError:
        return []


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idling and I/O wait, since boot."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0]  # "cpu  user nice system idle ..."
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S
