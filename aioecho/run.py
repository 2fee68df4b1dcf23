"""Blocking entry points for the command line: loop choice and signals."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .config import ServerConfig
from .descriptors import raise_open_file_limit
from .listener import Address
from .loops import LoopName, ResolvedLoop, resolve_loop
from .server import EchoServer

logger = logging.getLogger("aioecho")

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(level: int | str, prefix: str = "") -> None:
    """Log lines to stderr as the service writes them; ``prefix`` names a worker."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s %(name)s: {prefix}%(message)s",
        stream=sys.stderr,
    )


def run_on(loop: ResolvedLoop, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop of the given kind."""
    with asyncio.Runner(loop_factory=loop.factory) as runner:
        return runner.run(main)


def run_server(config: ServerConfig, loop: LoopName = "auto") -> int:
    """Serve until SIGINT or SIGTERM, then shut down gracefully; the exit code.

    With ``config.workers`` above 1 this process supervises that many worker
    processes (see :mod:`aioecho.workers`) instead of serving itself.
    """
    raise_open_file_limit()
    resolved = resolve_loop(loop)
    if config.workers > 1:
        from .workers import supervise

        return run_on(resolved, supervise(config, resolved.name))
    return run_on(resolved, _serve(config, resolved.name))


async def _serve(config: ServerConfig, loop_name: str) -> int:
    server = EchoServer(config)

    def announce(_: StopSignals) -> None:
        announce_serving(config, server.addresses, loop_name)
        announce_metrics(server.metrics_addresses)

    return await serve(server, announce)


async def serve(server: EchoServer, on_ready: Callable[[StopSignals], object]) -> int:
    """Start ``server``, serve until SIGINT or SIGTERM, shut down gracefully; the exit code.

    ``on_ready`` runs once the server accepts and the signal handlers are in
    place; setting their ``requested`` event also stops the server.
    """
    try:
        await server.start()
    except OSError as exc:
        return listen_failed(server.config, exc)
    # Handlers first: whoever learns that the server is ready may signal at once.
    stop = StopSignals(force=server.abort)
    try:
        on_ready(stop)
        await stop.requested.wait()
        grace = server.config.shutdown_timeout
        logger.info("shutting down (grace %.1f s; signal again to force)", grace)
        await server.shutdown()
    finally:
        stop.remove()
    logger.info("stopped")
    return 0


class StopSignals:
    """The first SIGINT/SIGTERM sets ``requested`` (a graceful stop), the second calls ``force``."""

    def __init__(self, force: Callable[[], None]) -> None:
        self.requested = asyncio.Event()
        self._force = force
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.requested.is_set():
            logger.warning("second signal: closing all connections now")
            self._force()
        self.requested.set()

    def remove(self) -> None:
        for sig in STOP_SIGNALS:
            self._loop.remove_signal_handler(sig)
            # The stop is done: a late signal must not turn exit 0 into death.
            signal.signal(sig, signal.SIG_IGN)


def announce_serving(config: ServerConfig, addresses: list[Address], loop_name: str) -> None:
    """Log the line that says the service accepts, and where (scripts wait for it)."""
    listening = ", ".join(format_address(address) for address in addresses)
    details = f"loop={loop_name}, framing={config.framing}" + (", tls" if config.tls_cert else "")
    if config.workers > 1:
        details += f", workers={config.workers}"
    logger.info("serving on %s (%s)", f"unix:{config.unix}" if config.unix else listening, details)


def announce_metrics(addresses: list[Address]) -> None:
    """Log where ``/metrics`` is served."""
    for address in addresses:
        logger.info("metrics on http://%s/metrics", format_address(address))


def listen_failed(config: ServerConfig, exc: OSError) -> int:
    """Report an address the service cannot listen on; the exit code."""
    logger.error("cannot listen on %s: %s", describe_listen(config), exc.strerror or exc)
    return 1


def describe_listen(config: ServerConfig) -> str:
    """Where the config asks to listen, for messages."""
    if config.unix is not None:
        return f"unix:{config.unix}"
    return ", ".join(format_address((host, config.port)) for host in config.hosts)


def format_address(address: Address) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
