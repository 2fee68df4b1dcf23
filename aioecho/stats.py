"""The snapshot of a server's counters that it hands out."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .core import Counters

logger = logging.getLogger("aioecho")


@dataclass(frozen=True, slots=True)
class Stats:
    """A point-in-time copy of a server's counters."""

    connections_active: int
    """Connections open now."""
    connections_accepted: int
    """Connections admitted since the start (refused ones not included)."""
    connections_rejected: dict[str, int]
    """Connections the server refused or closed, by :class:`CloseReason` value."""
    accept_errors: int
    """Failed ``accept()`` calls, such as running out of file descriptors."""
    bytes_received: int
    bytes_sent: int
    messages_answered: int
    """Lines (or chunks, in chunk framing) answered."""
    bytes_buffered: int = 0
    """Bytes held for clients now: input not yet answered and replies not yet sent,
    as of each connection's last read or the last timeout sweep."""
    faults: dict[str, int] = dataclasses.field(default_factory=dict)
    """Faults injected, by :class:`Fault` value (all zero unless faults are on)."""

    def __add__(self, other: Stats) -> Stats:
        """The counters of two servers together, as for the workers of one service."""
        totals = {
            field.name: _sum(getattr(self, field.name), getattr(other, field.name))
            for field in dataclasses.fields(self)
        }
        return Stats(**totals)

    def summary(self) -> str:
        """One line for a log."""
        rejected = " ".join(f"{reason}={n}" for reason, n in self.connections_rejected.items() if n)
        faults = " ".join(f"{fault}={n}" for fault, n in self.faults.items() if n)
        return (
            f"active={self.connections_active} accepted={self.connections_accepted} "
            f"rejected=[{rejected}] accept_errors={self.accept_errors} "
            f"in={self.bytes_received}B out={self.bytes_sent}B answered={self.messages_answered} "
            f"buffered={self.bytes_buffered}B" + (f" faults=[{faults}]" if faults else "")
        )


def snapshot(counters: Counters) -> Stats:
    """A copy of ``counters`` now."""
    return Stats(
        connections_active=counters.active,
        connections_accepted=counters.accepted,
        connections_rejected={reason.value: n for reason, n in counters.rejected.items()},
        accept_errors=counters.accept_errors,
        bytes_received=counters.bytes_in,
        bytes_sent=counters.bytes_out,
        messages_answered=counters.messages,
        bytes_buffered=counters.buffered,
        faults={fault.value: n for fault, n in counters.faults.items()},
    )


def _sum(one: Any, other: Any) -> Any:
    """Two counters added, or two tables of counters added key by key."""
    if not isinstance(one, dict):
        return one + other
    both = dict(one)
    for key, count in other.items():
        both[key] = both.get(key, 0) + count
    return both


async def log_stats_every(interval: float, snapshot: Callable[[], Stats]) -> None:
    """Log a one-line summary of ``snapshot()`` every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        logger.info("stats: %s", snapshot().summary())
