"""The server's live counters, and the names of what they count by kind."""

from __future__ import annotations

from enum import StrEnum


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
    """Live, mutable counters; the hot path adds to them once per read, not per line.

    Compiled, the whole numbers are C fields (counters.pxd), so adding to
    them on every read costs no Python object.
    """

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
