"""A server's CPU time and resident memory, read from /proc (Linux).

A server may be several processes (``--workers``), so every figure is the
sum over the process and its descendants. A process that vanishes between
listing and reading simply counts no more.
"""

from __future__ import annotations

from collections.abc import Iterable

from aioecho import procfs
from aioecho.procfs import PROC, tree

__all__ = ["cpu_seconds", "machine_busy_seconds", "rss_bytes", "thread_cpu_seconds", "tree"]


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU seconds the processes have used so far (gone ones: 0)."""
    return sum(procfs.cpu_seconds(pid) or 0.0 for pid in pids)


def thread_cpu_seconds(tid: int) -> float:
    """User plus system CPU seconds one thread of this process has used so far."""
    return procfs.thread_cpu_seconds(tid) or 0.0


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of the processes, in bytes (gone ones: 0)."""
    return sum(procfs.rss_bytes(pid) or 0 for pid in pids)


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idling and I/O wait, since boot."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0]  # "cpu  user nice system idle ..."
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / procfs.CLOCK_TICKS
