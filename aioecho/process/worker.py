"""One worker process of a multi-process server: ``python -m aioecho.process.worker``.

The supervisor (:mod:`aioecho.process.supervisor`) starts it with a pickled
:class:`~aioecho.process.spec.WorkerSpec` on stdin. The worker serves
exactly as the single-process command does, through the same lifecycle and
its own signal handlers, and reports its counters through the status pipe
(:mod:`aioecho.process.status`).
"""

from __future__ import annotations

from .early import catch_stop_signals

if __name__ == "__main__":
    # First: the supervisor's stop signals may come while the imports below run.
    catch_stop_signals()

import socket
import sys

from ..loops import resolve_loop, run_on
from ..server import EchoServer
from . import spawn
from .lifecycle import run_service
from .logs import configure_logging
from .single import ServerService
from .spec import WorkerSpec
from .status import StatusWriter


def main() -> int:
    """Run the worker the spec on stdin describes; the exit code."""
    spec: WorkerSpec = spawn.received()
    configure_logging(spec.log_level, prefix=f"worker {spec.number}: ")
    return run_on(resolve_loop(spec.loop), _work(spec))


def server_for(spec: WorkerSpec) -> EchoServer:
    """The worker's server: on the inherited sockets, or beside its siblings with SO_REUSEPORT."""
    if not spec.listen_fds:
        return EchoServer(spec.config, reuse_port=True)
    sockets = [socket.socket(fileno=fd) for fd in spec.listen_fds]
    for sock in sockets:
        sock.setblocking(False)
    return EchoServer(spec.config, sockets=sockets)


async def _work(spec: WorkerSpec) -> int:
    server = server_for(spec)
    status = StatusWriter(spec.status_fd)
    try:
        return await run_service(
            ServerService(server, spec.loop),
            lambda _, signals: status.start(lambda: server.stats, signals.request),
            # The process exits next; the supervisor's late signals must not kill it.
            after_stop="ignore",
        )
    finally:
        status.close(server.stats)


if __name__ == "__main__":
    sys.exit(main())
