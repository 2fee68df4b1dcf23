"""The live progress line of long runs, for terminals only."""

from __future__ import annotations

from time import monotonic
from typing import TextIO

from .load import Progress

CLEAR_LINE = "\r\x1b[K"


class ProgressLine:
    """Rewrites one terminal line: elapsed time, connections, messages/s, errors.

    Call it with each :class:`~aioecho.bench.load.Progress`; :meth:`clear`
    before printing the result.
    """

    def __init__(self, stream: TextIO, connections: int) -> None:
        self._stream = stream
        self._connections = connections
        self._started = self._last_time = monotonic()
        self._last_messages = 0
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        now = monotonic()
        elapsed = now - self._started
        rate = (progress.messages - self._last_messages) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_messages = now, progress.messages
        if progress.phase == "connecting":
            connections = f"{progress.connected:,}/{self._connections:,} connected"
            rate_text = ""
        else:
            connections = f"{progress.alive:,}/{self._connections:,} connections"
            rate_text = "   warming up" if progress.phase == "warmup" else f"   {rate:,.0f} msg/s"
        failed = progress.errors + progress.connect_failed
        self._stream.write(
            f"{CLEAR_LINE}{elapsed:6.1f} s   {connections}{rate_text}   {failed:,} errors"
        )
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the line, if one was shown."""
        if self._shown:
            self._stream.write(CLEAR_LINE)
            self._stream.flush()
            self._shown = False
