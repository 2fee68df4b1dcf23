"""Counters the server keeps, and the snapshot it hands out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CloseReason(StrEnum):
    """Why the server closed a connection on its own initiative."""

    LINE_TOO_LONG = "line_too_long"


class Counters:
    """Live, mutable counters; the hot path adds to them once per read."""

    __slots__ = ("accepted", "active", "bytes_in", "bytes_out", "closed", "messages")

    def __init__(self) -> None:
        self.accepted = 0
        self.active = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages = 0
        self.closed: dict[CloseReason, int] = dict.fromkeys(CloseReason, 0)

    def snapshot(self) -> Stats:
        return Stats(
            connections_active=self.active,
            connections_accepted=self.accepted,
            bytes_received=self.bytes_in,
            bytes_sent=self.bytes_out,
            messages_answered=self.messages,
            closed_by_server={reason.value: n for reason, n in self.closed.items()},
        )


@dataclass(frozen=True, slots=True)
class Stats:
    """A point-in-time copy of a server's counters."""

    connections_active: int
    connections_accepted: int
    bytes_received: int
    bytes_sent: int
    messages_answered: int
    closed_by_server: dict[str, int] = field(default_factory=dict)
