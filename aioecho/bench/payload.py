"""What goes on the wire and what must come back.

Every request of a run is unique: its body starts with the connection number
and the request's sequence number on that connection (as fortio does), then
lowercase letters fill it to ``--size``. A reply can then only match the one
request it answers, and a wrong one says what it is: the reply to another
connection's request (swapped), to a later request of this one (the ones in
between were dropped), to one already answered (duplicate), or to none sent
(extra); ``aioecho.core`` names these kinds. Both numbers are fixed-width
decimals, so every request has the same size; digits are the same upper- and
lowercase.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import Expect

LETTERS = string.ascii_lowercase.encode()
# Sequence numbers get at most this many digits: 10**16 requests on one
# connection is more than any run sends, so they never wrap in practice.
MAX_SEQUENCE_DIGITS = 16
SEPARATOR = b":"


@dataclass(frozen=True)
class Tagged:
    """A reply that carries a request's tag: whose request, which one."""

    connection: int
    sequence: int


@dataclass(frozen=True)
class Payload:
    """Per-connection request and reply templates for a run's request size.

    ``request(c, s)`` is connection ``c``'s request number ``s``; ``reply(c, s)``
    the exact reply it must get. The hot path uses :meth:`requests` and
    :meth:`replies`: a function of the sequence number per connection, one
    ``%`` per message with the connection number already filled in.
    """

    size: int
    expect: Expect
    suffix: str
    connections: int
    connection_digits: int = field(init=False)
    sequence_digits: int = field(init=False)
    _tag: re.Pattern[bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        digits = len(str(max(self.connections - 1, 0)))
        room = self.size - 1 - digits - len(SEPARATOR)
        unique = room >= 1
        object.__setattr__(self, "connection_digits", digits if unique else 0)
        object.__setattr__(self, "sequence_digits", min(room, MAX_SEQUENCE_DIGITS) if unique else 0)
        pattern = rb"(\d{%d}):(\d{%d})" % (self.connection_digits, self.sequence_digits)
        object.__setattr__(self, "_tag", re.compile(pattern))

    @classmethod
    def build(cls, size: int, expect: Expect, suffix: str, connections: int = 1) -> Payload:
        """The payload for ``size``-byte requests over ``connections`` connections."""
        return cls(size, expect, suffix, connections)

    @property
    def unique(self) -> bool:
        """Whether requests carry their tag; only 1-to-few-byte requests cannot."""
        return self.sequence_digits > 0

    @property
    def wide(self) -> bool:
        """Whether sequence numbers have every digit they can use: then
        ``template % sequence`` is a request (or reply) as it is, and the hot
        path formats it directly."""
        return self.sequence_digits == MAX_SEQUENCE_DIGITS

    def templates(self, connection: int) -> tuple[bytes, bytes]:
        """Connection ``connection``'s request and reply templates (``% sequence``)."""
        upper = self.expect == "upper-sb"
        return self._format(connection, upper=False), self._format(connection, upper=upper)

    @property
    def sequence_offset(self) -> int:
        """Where a request's (and its reply's) sequence number starts."""
        return self.connection_digits + len(SEPARATOR) if self.unique else 0

    @property
    def modulus(self) -> int:
        """Sequence numbers are written modulo this (they never wrap at 16 digits)."""
        return int(10**self.sequence_digits)

    @staticmethod
    def reply_size(size: int, expect: Expect, suffix: str) -> int:
        """The length of the reply to a ``size``-byte request."""
        return size if expect == "echo" else size + len(suffix.encode())

    def requests(self, connection: int) -> Callable[[int], bytes]:
        """Connection ``connection``'s request with a given sequence number."""
        return self._numbered(self.templates(connection)[0])

    def replies(self, connection: int) -> Callable[[int], bytes]:
        """The reply each of :meth:`requests` must get."""
        return self._numbered(self.templates(connection)[1])

    def request(self, connection: int, sequence: int) -> bytes:
        """Connection ``connection``'s request number ``sequence``."""
        return self.requests(connection)(sequence)

    def reply(self, connection: int, sequence: int) -> bytes:
        """The exact reply :meth:`request` must get."""
        return self.replies(connection)(sequence)

    def identify(self, reply: bytes) -> Tagged | None:
        """Which request of the run ``reply`` answers, if it is exactly one's reply."""
        if not self.unique:
            return None
        match = self._tag.match(reply)
        if match is None:
            return None
        tagged = Tagged(int(match.group(1)), int(match.group(2)))
        if tagged.connection >= self.connections:
            return None
        if reply != self.reply(tagged.connection, tagged.sequence):
            return None
        return tagged

    def _numbered(self, template: bytes) -> Callable[[int], bytes]:
        if not self.unique:
            return lambda sequence: template
        if self.wide:
            return template.__mod__  # never wraps
        modulus = self.modulus
        return lambda sequence: template % (sequence % modulus)

    def _format(self, connection: int, *, upper: bool) -> bytes:
        """The template: connection number, sequence placeholder, letters, terminator."""
        head = b"%0*d" % (self.connection_digits, connection) + SEPARATOR if self.unique else b""
        pad = _letters(connection, self.size - 1 - len(head) - self.sequence_digits)
        tail = (self.suffix.encode() if upper else b"") + b"\n"
        if upper:
            pad = pad.upper()
        if not self.unique:
            return pad + tail
        # Escape any "%" of the suffix: the template goes through "%".
        number = b"%%0%dd" % self.sequence_digits
        return head + number + (pad + tail).replace(b"%", b"%%")


def _letters(connection: int, count: int) -> bytes:
    """``count`` lowercase letters, starting at a letter that depends on the connection."""
    if count <= 0:
        return b""
    start = connection % len(LETTERS)
    return (LETTERS * (count // len(LETTERS) + 2))[start : start + count]
