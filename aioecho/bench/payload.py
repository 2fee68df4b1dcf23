"""What goes on the wire and what must come back, built once per run."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from .config import Expect

# Requests rotate through this many distinct bodies (one per starting letter),
# and each connection starts at a different one, so a reply delivered out of
# order or to the wrong connection fails verification instead of passing by
# coincidence. The same scheme as the C reference client.
VARIANTS = 26
LETTERS = string.ascii_lowercase.encode()
# Large requests get fewer variants so that the pre-built payload of each
# client process stays within this many bytes per direction.
PAYLOAD_BUDGET = 32 * 1024 * 1024


@dataclass(frozen=True)
class Payload:
    """Pre-built requests and the exact reply each must receive.

    Connection ``i`` sends ``requests[i % n]``, then each request's
    successor in ``next_request``, and expects the matching sequence of
    replies. Walking shared successor tables instead of giving each of
    thousands of connections its own iterator keeps the per-message work in
    memory that every connection shares, which stays in the CPU cache.
    """

    requests: tuple[bytes, ...]
    replies: tuple[bytes, ...]
    next_request: dict[bytes, bytes] = field(init=False, repr=False)
    next_reply: dict[bytes, bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "next_request", _successors(self.requests))
        object.__setattr__(self, "next_reply", _successors(self.replies))

    @staticmethod
    def reply_size(size: int, expect: Expect, suffix: str) -> int:
        """The length of the reply to a ``size``-byte request."""
        return size if expect == "echo" else size + len(suffix.encode())

    @classmethod
    def build(cls, size: int, expect: Expect, suffix: str) -> Payload:
        """``size``-byte lowercase lines and their replies under ``expect``."""
        variants = max(2, min(VARIANTS, PAYLOAD_BUDGET // size))
        letters = LETTERS * (size // len(LETTERS) + 2)
        requests = tuple(letters[v : v + size - 1] + b"\n" for v in range(variants))
        if expect == "echo":
            return cls(requests, requests)
        tail = suffix.encode() + b"\n"
        return cls(requests, tuple(request[:-1].upper() + tail for request in requests))

    def first_request(self, connection: int) -> bytes:
        """The first request connection number ``connection`` sends."""
        return self.requests[connection % len(self.requests)]

    def first_reply(self, connection: int) -> bytes:
        """The reply to :meth:`first_request`."""
        return self.replies[connection % len(self.replies)]


def _successors(items: tuple[bytes, ...]) -> dict[bytes, bytes]:
    # Equal items (only possible for 1-byte requests: every one is b"\n")
    # collapse into one key that is its own successor, which is still right.
    return {item: items[(number + 1) % len(items)] for number, item in enumerate(items)}
