"""The one seam between a connection and what it does with its replies.

A connection writes its replies straight to its transport. Given a
:class:`ReplySink` (the fault outbox, when a fault is on), it hands them to
the sink instead, and the sink writes them to the transport in its own time,
calling back only the connection's public methods: ``answer_more()`` when it
takes replies again, ``close_after_replies()`` when a close it held off may
go ahead, ``stop_answering()``, ``account()``, and ``transport``.
"""

from __future__ import annotations

from typing import Protocol


class ReplySink(Protocol):
    """Takes a connection's replies in place of its transport."""

    def write(self, replies: bytes | bytearray, error: bytes = b"") -> None:
        """Take the replies to whole lines, in order, then the server's own ``error`` line.

        The sink counts the lines it answers and the bytes it writes.
        """

    def accepts(self, everything: bool) -> bool:
        """Whether the connection may answer more lines now.

        ``everything``: at the end of input, where every owed line is
        answered at once. After False, the sink calls ``answer_more()``
        once it takes replies again.
        """

    def held(self) -> int:
        """The bytes of replies the sink holds, for the memory budget."""

    def close_when_flushed(self, linger: float | None) -> bool:
        """Hold a close off while replies are held: True if so.

        The sink then calls ``close_after_replies(linger)`` once it has
        written them.
        """

    def flush(self) -> None:
        """Write what is due now: the transport takes writes again, or time moved.

        Called outside the answering of lines, so a write, a reset or a close
        may happen here.
        """

    def discard(self) -> None:
        """Drop every reply held: the connection is gone, or shed."""
