"""Counters the server keeps, and the snapshot it hands out."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

logger = logging.getLogger("aioecho")


class CloseReason(StrEnum):
    """Why the server refused or closed a connection on its own initiative."""

    MAX_CONNECTIONS = "max_connections"
    IDLE_TIMEOUT = "idle_timeout"
    WRITE_TIMEOUT = "write_timeout"
    LINE_TOO_LONG = "line_too_long"
    LINE_TIMEOUT = "line_timeout"
    MAX_CONNECTIONS_PER_IP = "max_connections_per_ip"
    CLIENT_MEMORY = "client_memory"


class Fault(StrEnum):
    """A fault injected on purpose; see :class:`~aioecho.faults.FaultPlan`."""

    DELAY = "delay"  # replies the delay spec held back
    JITTER = "jitter"  # replies given a random extra delay
    BANDWIDTH = "bandwidth"  # replies written under the rate limit
    FRAGMENT = "fragment"  # replies split into pieces
    DROP = "drop"  # lines left without a reply
    RESET = "reset"  # connections reset instead of a reply
    CLOSE_AFTER = "close_after"  # connections closed at the byte limit
    STALL_AFTER = "stall_after"  # connections that stopped answering


class Counters:
    """Live, mutable counters; the hot path adds to them once per read, not per line."""

    __slots__ = (
        "accept_errors",
        "accepted",
        "active",
        "buffered",
        "bytes_in",
        "bytes_out",
        "faults",
        "messages",
        "rejected",
    )

    def __init__(self) -> None:
        self.accepted = 0
        self.active = 0
        self.buffered = 0  # bytes held for clients: unanswered input, unsent replies
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages = 0
        self.accept_errors = 0
        self.rejected: dict[CloseReason, int] = dict.fromkeys(CloseReason, 0)
        self.faults: dict[Fault, int] = dict.fromkeys(Fault, 0)

    def snapshot(self) -> Stats:
        return Stats(
            connections_active=self.active,
            connections_accepted=self.accepted,
            connections_rejected={reason.value: n for reason, n in self.rejected.items()},
            accept_errors=self.accept_errors,
            bytes_received=self.bytes_in,
            bytes_sent=self.bytes_out,
            messages_answered=self.messages,
            bytes_buffered=self.buffered,
            faults={fault.value: n for fault, n in self.faults.items()},
        )


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
