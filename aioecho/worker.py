"""One worker process of a multi-process server: ``python -m aioecho.worker``.

The supervisor (:mod:`aioecho.workers`) starts it with a pickled
:class:`WorkerSpec` on stdin. The worker serves exactly as the
single-process command does, its own signal handlers included, and reports
its counters through a pipe: a first record as soon as it accepts (which is
how the supervisor learns it is ready), one every ``PUBLISH_INTERVAL``, and
a last one after it stopped. Writing to that pipe fails once the supervisor
is gone, however it went: the worker then stops too instead of serving on
unsupervised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .config import ServerConfig
from .loops import LoopName, resolve_loop
from .run import configure_logging, run_on, serve
from .server import EchoServer
from .stats import CloseReason, Stats

logger = logging.getLogger("aioecho")

# Often enough for a scrape to be current, rarely enough to cost nothing:
# one 80-byte write per worker, off the path of any connection.
PUBLISH_INTERVAL = 0.25

# The command line's log format, with the worker's number in every line.

# A status record: the counters of Stats in field order, then the rejections
# by reason, as native int64. Records are far below PIPE_BUF, so each write
# arrives whole.
_TOTALS = tuple(
    field.name for field in dataclasses.fields(Stats) if field.name != "connections_rejected"
)
_REASONS = tuple(reason.value for reason in CloseReason)
_RECORD = struct.Struct(f"={len(_TOTALS) + len(_REASONS)}q")
RECORD_SIZE = _RECORD.size


def encode_stats(stats: Stats) -> bytes:
    """A status record of ``stats``."""
    rejected = (stats.connections_rejected.get(reason, 0) for reason in _REASONS)
    return _RECORD.pack(*(getattr(stats, name) for name in _TOTALS), *rejected)


def decode_stats(record: bytes) -> Stats:
    """The stats in a status record."""
    values = _RECORD.unpack(record)
    split = len(_TOTALS)
    totals = dict(zip(_TOTALS, values[:split], strict=True))
    rejected = dict(zip(_REASONS, values[split:], strict=True))
    return Stats(connections_rejected=rejected, **totals)


@dataclass(frozen=True)
class WorkerSpec:
    """What the supervisor tells a worker it starts."""

    number: int
    config: ServerConfig
    """The service's config with the port resolved, one worker, no metrics or stats lines."""
    loop: LoopName
    log_level: int
    status_fd: int
    """The write end of the status pipe."""
    listen_fds: tuple[int, ...]
    """Listening sockets to serve; none: bind the config's addresses with SO_REUSEPORT."""

    def server(self) -> EchoServer:
        if not self.listen_fds:
            return EchoServer(self.config, reuse_port=True)
        sockets = [socket.socket(fileno=fd) for fd in self.listen_fds]
        for sock in sockets:
            sock.setblocking(False)
        return EchoServer(self.config, sockets=sockets)


class StatusWriter:
    """The worker's end of the status pipe."""

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


def main() -> int:
    """Run the worker the spec on stdin describes; the exit code."""
    spec: WorkerSpec = pickle.load(sys.stdin.buffer)
    configure_logging(spec.log_level, prefix=f"worker {spec.number}: ")
    return run_on(resolve_loop(spec.loop), _work(spec))


async def _work(spec: WorkerSpec) -> int:
    server = spec.server()
    status = StatusWriter(spec.status_fd)
    try:
        return await serve(
            server, lambda stop: status.start(lambda: server.stats, stop.requested.set)
        )
    finally:
        status.close(server.stats)


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy's: the spec
    # unpickles as aioecho.worker.WorkerSpec.
    from aioecho.worker import main as worker_main

    sys.exit(worker_main())
