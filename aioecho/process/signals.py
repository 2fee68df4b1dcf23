"""SIGINT and SIGTERM as a stop request, for as long as a service runs.

The first signal asks for a graceful stop, the second forces it. When the
service has stopped, the handlers that were there before come back, so that a
program that ran a server still reacts to Ctrl-C afterwards (as uvicorn does).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from .early import STOP_SIGNALS, take_stop_request

if TYPE_CHECKING:
    from .early import Handler

logger = logging.getLogger("aioecho")


AfterStop = Literal["restore", "ignore"]
"""What the stop signals do once the service has stopped: what they did
before, or nothing (a program about to exit, where a late signal must not
turn exit 0 into a death)."""


class StopSignals:
    """While entered, the first SIGINT/SIGTERM sets ``requested``, the second calls ``force``."""

    def __init__(self, force: Callable[[], None], after_stop: AfterStop = "restore") -> None:
        self.requested = asyncio.Event()
        self._force = force
        self._after_stop = after_stop
        self._loop = asyncio.get_running_loop()
        self._previous: dict[signal.Signals, Handler] = {}

    def request(self) -> None:
        """Ask for a graceful stop, as a first signal does."""
        self.requested.set()

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            self._loop.add_signal_handler(sig, self._on_signal)
        if take_stop_request():  # one came while the program started: it asked for a stop
            self.request()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            self._loop.remove_signal_handler(sig)
            if self._after_stop == "ignore":
                signal.signal(sig, signal.SIG_IGN)
            elif previous is not None:  # None: set outside Python, nothing to put back
                signal.signal(sig, previous)

    def _on_signal(self) -> None:
        if self.requested.is_set():
            logger.warning("second signal: closing all connections now")
            self._force()
        self.requested.set()
