"""Stop signals caught from a program's first line, until the service's own handlers take over.

Python dies of SIGTERM, and turns SIGINT into a KeyboardInterrupt with a
traceback, for as long as nothing else is installed; importing the service
and starting its loop takes a good part of a second on a loaded machine. The
entry points of ``python -m aioecho`` and of a worker process call
:func:`catch_stop_signals` before importing anything else: a stop signal is
then remembered, and :class:`~aioecho.process.signals.StopSignals` acts on it
(the service stops before it starts, with exit code 0) as soon as it is in
place. A command that does not serve gives the signals back with
:func:`release_stop_signals`.

Imports only :mod:`signal`: whatever this module imports runs before the
handlers are in place.
"""

from __future__ import annotations

import signal
from types import FrameType

TYPE_CHECKING = False  # not typing's: see aioecho/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Handler = Callable[[int, FrameType | None], Any] | int | None

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_caught: list[int] = []
_previous: dict[int, Handler] = {}


def catch_stop_signals() -> None:
    """From now on, remember SIGINT and SIGTERM instead of dying of them."""
    for sig in STOP_SIGNALS:
        _previous[sig] = signal.signal(sig, _remember)


def take_stop_request() -> bool:
    """Whether a stop signal came since :func:`catch_stop_signals`; forgets it."""
    came = bool(_caught)
    _caught.clear()
    return came


def release_stop_signals() -> None:
    """Give the signals the handlers they had back, and let one that came act now."""
    for sig, previous in _previous.items():
        if previous is not None:  # None: set outside Python, nothing to put back
            signal.signal(sig, previous)
    _previous.clear()
    came = list(dict.fromkeys(_caught))
    _caught.clear()
    for sig in came:
        signal.raise_signal(sig)


def _remember(signum: int, _: FrameType | None) -> None:
    _caught.append(signum)
