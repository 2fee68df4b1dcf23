"""The status pipe from a worker to its supervisor, and its record format.

A worker writes a record as soon as it accepts (which is how the supervisor
learns it is ready), one every ``PUBLISH_INTERVAL``, and a last one after it
stopped. A record is the counters of :class:`Stats` in field order, then the
rejections by reason, then the faults injected, as native int64: far below
PIPE_BUF, so each write arrives whole. Counters are totals, so only the
latest record matters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import struct
from collections.abc import Callable

from ..core import CloseReason, Fault
from ..stats import Stats

logger = logging.getLogger("aioecho")

# Often enough for a scrape to be current and for a hung worker to be noticed
# within a second (see ServerConfig.worker_timeout), rarely enough to cost
# nothing: one small write per worker, off the path of any connection.
PUBLISH_INTERVAL = 0.25

_TABLES = ("connections_rejected", "faults")
_TOTALS = tuple(field.name for field in dataclasses.fields(Stats) if field.name not in _TABLES)
_REASONS = tuple(reason.value for reason in CloseReason)
_FAULTS = tuple(fault.value for fault in Fault)
_RECORD = struct.Struct(f"={len(_TOTALS) + len(_REASONS) + len(_FAULTS)}q")
RECORD_SIZE = _RECORD.size


def encode_stats(stats: Stats) -> bytes:
    """A status record of ``stats``."""
    rejected = (stats.connections_rejected.get(reason, 0) for reason in _REASONS)
    faults = (stats.faults.get(fault, 0) for fault in _FAULTS)
    return _RECORD.pack(*(getattr(stats, name) for name in _TOTALS), *rejected, *faults)


def decode_stats(record: bytes) -> Stats:
    """The stats in a status record."""
    values = _RECORD.unpack(record)
    split, faults_at = len(_TOTALS), len(_TOTALS) + len(_REASONS)
    totals = dict(zip(_TOTALS, values[:split], strict=True))
    rejected = dict(zip(_REASONS, values[split:faults_at], strict=True))
    faults = dict(zip(_FAULTS, values[faults_at:], strict=True))
    return Stats(connections_rejected=rejected, faults=faults, **totals)


class StatusWriter:
    """The worker's end of the status pipe.

    Writing fails once the supervisor is gone, however it went: the worker
    then stops too instead of serving on unsupervised.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self._timer: asyncio.TimerHandle | None = None
        self._started = False

    def start(self, snapshot: Callable[[], Stats], supervisor_gone: Callable[[], None]) -> None:
        """Report now, which tells the supervisor the worker accepts, then periodically."""
        loop = asyncio.get_running_loop()
        self._started = True

        def publish() -> None:
            if self._write(snapshot()):
                self._timer = loop.call_later(PUBLISH_INTERVAL, publish)
            else:
                logger.warning("the supervisor is gone: stopping")
                supervisor_gone()

        publish()

    def close(self, final: Stats) -> None:
        """Report the final counters, if the worker ever accepted, and close the pipe."""
        if self._timer is not None:
            self._timer.cancel()
        if self._started:
            self._write(final)
        os.close(self._fd)

    def _write(self, stats: Stats) -> bool:
        """Send a record; False once the supervisor has closed its end."""
        try:
            os.write(self._fd, encode_stats(stats))
        except BlockingIOError:
            pass  # the supervisor is behind; only the latest record matters to it
        except BrokenPipeError:
            return False
        return True


class StatusReader:
    """The supervisor's end of a worker's status pipe: records until end of file."""

    def __init__(self, fd: int, on_stats: Callable[[Stats], None]) -> None:
        self.closed = asyncio.Event()
        self._fd = fd
        self._on_stats = on_stats
        self._pending = b""
        self._loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._read)

    def drain(self) -> None:
        """Read every record waiting in the pipe now, without waiting for the loop."""
        while not self.closed.is_set() and self._read():
            pass

    def _read(self) -> bool:
        """Read what the pipe holds; whether there was anything (end of file included)."""
        try:
            data = os.read(self._fd, 64 * RECORD_SIZE)
        except BlockingIOError:
            return False
        if not data:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self.closed.set()
            return True
        self._pending += data
        complete = len(self._pending) - len(self._pending) % RECORD_SIZE
        if complete:
            self._on_stats(decode_stats(self._pending[complete - RECORD_SIZE : complete]))
            self._pending = self._pending[complete:]
        return True
