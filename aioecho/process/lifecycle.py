"""The one lifecycle of a running service: start, announce, wait for a signal, stop.

One process serving and a supervisor of worker processes go through the
same steps (:func:`run_service`); what differs is the :class:`Service`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from .readiness import Readiness
from .signals import AfterStop, StopSignals

logger = logging.getLogger("aioecho")

Announce = Callable[[Readiness, StopSignals], None]
"""Called once the service accepts, with the signals in place: announce it.
Calling ``request()`` on the signals stops the service, as a signal does."""


class ServiceFailed(Exception):
    """A service could not start; the message says why."""


class Service(Protocol):
    """What :func:`run_service` runs."""

    stopping: str
    """The log line's start when a graceful stop begins (``shutting down``)."""
    grace: float
    """Seconds the graceful stop waits before closing what is left."""

    async def start(self) -> None:
        """Start serving; on failure (or cancellation), undo what was started, then raise.

        A failure is an :class:`OSError` naming the address or
        :class:`ServiceFailed`.
        """

    def readiness(self) -> Readiness:
        """Where the started service accepts."""

    async def stop(self) -> None:
        """Stop gracefully: no new connections, owed replies flushed."""

    def force(self) -> None:
        """Close every connection now (the second signal)."""


async def run_service(
    service: Service, announce: Announce, after_stop: AfterStop = "restore"
) -> int:
    """Start ``service``, announce it, serve until SIGINT or SIGTERM, stop; the exit code.

    The signal handlers are in place from the start: a signal while the
    service starts cancels the start, which undoes itself. A failed start is
    logged in one line and is exit code 1.
    """
    with StopSignals(force=service.force, after_stop=after_stop) as signals:
        failed = await _start(service, signals)
        if failed is not None:
            return failed
        code = _announce(service, announce, signals)
        await signals.requested.wait()
        logger.info("%s (grace %.1f s; signal again to force)", service.stopping, service.grace)
        await service.stop()
    logger.info("stopped")
    return code


def _announce(service: Service, announce: Announce, signals: StopSignals) -> int:
    """Announce the service; if that fails (an unwritable ready file), stop it: exit code 1."""
    try:
        announce(service.readiness(), signals)
    except OSError as exc:
        logger.error("cannot announce that the service is ready: %s", exc)
        signals.request()
        return 1
    return 0


async def _start(service: Service, signals: StopSignals) -> int | None:
    """Start the service unless a signal comes first; None, or the exit code if it did not."""
    if signals.requested.is_set():  # before the loop ran: nothing to start or undo
        return _stopped_before_ready()
    starting = asyncio.ensure_future(service.start())
    stop_requested = asyncio.ensure_future(signals.requested.wait())
    try:
        await asyncio.wait([starting, stop_requested], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_requested.cancel()
        if not starting.done():
            starting.cancel()  # a signal came first: the start rolls back
    try:
        await starting
    except asyncio.CancelledError:
        if not signals.requested.is_set():
            raise  # not ours: this coroutine itself is being cancelled
        return _stopped_before_ready()
    except (OSError, ServiceFailed) as exc:
        logger.error("%s", _describe(exc))
        return 1
    return None


def _stopped_before_ready() -> int:
    logger.info("stopped before it was ready")
    return 0


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith("cannot ") else f"cannot start: {text}"
