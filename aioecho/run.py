"""Blocking entry points for the command line: loop choice and signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from .config import ServerConfig
from .listener import Address
from .loops import LoopName, ResolvedLoop, resolve_loop
from .server import EchoServer

logger = logging.getLogger("aioecho")

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_on(loop: ResolvedLoop, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop of the given kind."""
    with asyncio.Runner(loop_factory=loop.factory) as runner:
        return runner.run(main)


def run_server(config: ServerConfig, loop: LoopName = "auto") -> int:
    """Serve until SIGINT or SIGTERM, then shut down gracefully; the exit code."""
    raise_open_file_limit()
    resolved = resolve_loop(loop)
    return run_on(resolved, _serve(config, resolved.name))


async def _serve(config: ServerConfig, loop_name: str) -> int:
    server = EchoServer(config)
    try:
        await server.start()
    except OSError as exc:
        logger.error("cannot listen on %s: %s", describe_listen(config), exc.strerror or exc)
        return 1
    # Handlers first: whoever reads the log line may signal at once.
    stop = _StopSignals(server)
    listening = ", ".join(format_address(address) for address in server.addresses)
    details = f"loop={loop_name}, framing={config.framing}" + (", tls" if config.tls_cert else "")
    logger.info("serving on %s (%s)", f"unix:{config.unix}" if config.unix else listening, details)
    for address in server.metrics_addresses:
        logger.info("metrics on http://%s/metrics", format_address(address))
    try:
        await stop.requested.wait()
        logger.info("shutting down (grace %.1f s; signal again to force)", config.shutdown_timeout)
        await server.shutdown()
    finally:
        stop.remove()
    logger.info("stopped")
    return 0


class _StopSignals:
    """First SIGINT/SIGTERM asks for a graceful stop, the second forces it."""

    def __init__(self, server: EchoServer) -> None:
        self.requested = asyncio.Event()
        self._server = server
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.requested.is_set():
            logger.warning("second signal: closing all connections now")
            self._server.abort()
        self.requested.set()

    def remove(self) -> None:
        for sig in STOP_SIGNALS:
            self._loop.remove_signal_handler(sig)
            # The stop is done: a late signal must not turn exit 0 into death.
            signal.signal(sig, signal.SIG_IGN)


def raise_open_file_limit() -> None:
    """Lift the soft open-file limit to the hard one: each client costs a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def describe_listen(config: ServerConfig) -> str:
    """Where the config asks to listen, for messages."""
    if config.unix is not None:
        return f"unix:{config.unix}"
    return ", ".join(format_address((host, config.port)) for host in config.hosts)


def format_address(address: Address) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
