"""What goes on the wire and what must come back, built once per run."""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator
from dataclasses import dataclass

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
    """Pre-built requests and the exact reply each must receive."""

    requests: tuple[bytes, ...]
    replies: tuple[bytes, ...]

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

    def requests_for(self, connection: int) -> Iterator[bytes]:
        """The endless request sequence of one connection."""
        return _rotated(self.requests, connection)

    def replies_for(self, connection: int) -> Iterator[bytes]:
        """The replies matching :meth:`requests_for`, in the same order."""
        return _rotated(self.replies, connection)


def _rotated(items: tuple[bytes, ...], start: int) -> Iterator[bytes]:
    start %= len(items)
    return itertools.cycle(items[start:] + items[:start])
