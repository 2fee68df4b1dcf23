"""The blocking entry point: pick the loop, run the service's lifecycle, return the exit code."""

from __future__ import annotations

import ssl

from ..config import ServerConfig
from ..loops import LoopName, ResolvedLoop, resolve_loop, run_on
from ..server import EchoServer
from ..sockets.limits import raise_open_file_limit
from .lifecycle import Service, run_service
from .readiness import Readiness, ReadyReport
from .signals import AfterStop, StopSignals
from .single import ServerService
from .supervisor import WorkersService


def run_server(
    config: ServerConfig,
    loop: LoopName | ResolvedLoop = "auto",
    *,
    ready: ReadyReport | None = None,
    after_stop: AfterStop = "restore",
    tls: ssl.SSLContext | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM, then shut down gracefully; the exit code.

    Blocks, on a new event loop of the kind ``loop`` names (or of a loop a
    caller already resolved, as the command line does to refuse a missing
    uvloop before anything starts). A start that
    fails (a busy port, echo or metrics) is logged in one line naming the
    address and returns 1, with nothing left running. With
    ``config.workers`` above 1 this process supervises that many worker
    processes instead of serving itself. ``ready`` receives the JSON
    readiness line once the service accepts. The signal handlers of SIGINT
    and SIGTERM are this call's while it runs and are restored when it
    returns (``after_stop="ignore"`` leaves the signals ignored instead, for
    a program that exits next). ``tls``: the context made from the config's
    certificate and key, if the caller made it already (each worker process
    makes its own).
    """
    raise_open_file_limit()
    resolved = loop if isinstance(loop, ResolvedLoop) else resolve_loop(loop)
    report = ready or ReadyReport()

    def announce(readiness: Readiness, _: StopSignals) -> None:
        readiness.log()
        report.publish(readiness)

    async def serve() -> int:
        service: Service
        if config.workers > 1:
            service = WorkersService(config, resolved.name)
        else:
            service = ServerService(EchoServer(config, tls=tls), resolved.name)
        return await run_service(service, announce, after_stop)

    return run_on(resolved, serve())
