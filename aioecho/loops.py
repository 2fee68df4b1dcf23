"""Event-loop choice (the only module that imports uvloop), and running a coroutine on one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .extras import MissingExtraError, import_extra

LoopName = Literal["auto", "asyncio", "uvloop"]
LOOP_NAMES: tuple[LoopName, ...] = ("auto", "asyncio", "uvloop")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

T = TypeVar("T")


@dataclass(frozen=True)
class ResolvedLoop:
    """A concrete loop: the name to report and the factory to run it with."""

    name: Literal["asyncio", "uvloop"]
    factory: LoopFactory


def resolve_loop(name: LoopName = "auto") -> ResolvedLoop:
    """Map a loop name to a factory; ``auto`` prefers uvloop when it is installed.

    Raises :class:`~aioecho.extras.MissingExtraError` for ``uvloop`` without uvloop.
    """
    if name != "asyncio":
        try:
            uvloop = import_extra("uvloop", "uvloop", "the uvloop event loop")
        except MissingExtraError:
            if name == "uvloop":
                raise
        else:
            factory: LoopFactory = uvloop.new_event_loop
            return ResolvedLoop("uvloop", factory)
    return ResolvedLoop("asyncio", asyncio.new_event_loop)


def run_on(loop: ResolvedLoop, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop of the given kind."""
    with asyncio.Runner(loop_factory=loop.factory) as runner:
        return runner.run(main)
