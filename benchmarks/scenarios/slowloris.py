"""Slowloris: slow senders fill the connection slots, then normal clients try their luck.

The slow clients connect from 127.0.0.2 (normal clients from 127.0.0.1, so
a per-address limit can tell them apart), each trickling one byte of a line
that never ends every ``TRICKLE_S``, and connect once: a slot the server
frees stays free. The holding time starts once every slow client has
connected (or failed to); after it, normal clients each send one line and
wait for the answer while the slow ones go on trickling.
"""

from __future__ import annotations

import asyncio
import random
from asyncio import FIRST_COMPLETED
from collections import Counter
from typing import Any, Literal

from .model import Column, Figures, Scenario, Settings
from .target import HOST, ServerProcess, suffix_of

SLOW_SOURCE = "127.0.0.2"
TRICKLE_S = 1.5
CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 3.0
REQUEST = b"hello\n"


class _Slow:
    """The slow clients' shared state: how many hold a slot now, and how each ended."""

    def __init__(self, clients: int) -> None:
        self.open = 0
        self.ended: Counter[str] = Counter()
        self.stop = asyncio.Event()
        self.in_place = asyncio.Event()  # every client has connected or given up
        self._waiting = clients

    def settled(self) -> None:
        """One client connected or gave up connecting."""
        self._waiting -= 1
        if self._waiting == 0:
            self.in_place.set()


async def _trickle(port: int, slow: _Slow) -> None:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, local_addr=(SLOW_SOURCE, 0)), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError) as error:
        slow.ended[f"connect failed ({type(error).__name__})"] += 1
        return
    else:
        slow.open += 1
    finally:
        slow.settled()  # however the connect ended, the holding time may not wait for it
    try:
        slow.ended[await _hold(reader, writer, slow.stop)] += 1
    finally:
        slow.open -= 1
        writer.transport.abort()


async def _hold(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stop: asyncio.Event
) -> str:
    """Trickle until ``stop``; how it ended: ``held`` to the end, or what the server did."""
    answer = asyncio.ensure_future(reader.readline())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        # Start at a random point of the interval, so the bytes are spread over time.
        pause = random.uniform(0, TRICKLE_S)
        while not await _ended(answer, stopped, pause):
            writer.write(b"x")
            pause = TRICKLE_S
    finally:
        stopped.cancel()
        if not answer.done():
            answer.cancel()
    if not answer.done() or answer.cancelled():
        return "held to the end"
    if error := answer.exception():
        return f"reset ({type(error).__name__})"
    data = answer.result()
    return data.strip().decode(errors="replace") if data else "closed"


async def _ended(
    answer: asyncio.Future[bytes], stopped: asyncio.Future[Literal[True]], pause: float
) -> bool:
    """Wait ``pause`` seconds unless the server answers or the run stops first: did either?"""
    pending: set[asyncio.Future[Any]] = {answer, stopped}
    await asyncio.wait(pending, timeout=pause, return_when=FIRST_COMPLETED)
    return answer.done() or stopped.done()


async def _ask(port: int, expected: bytes) -> str:
    """One normal client: ``served``, the server's ``ERR`` line, ``closed``, or ``no answer``."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError) as error:
        return f"connect failed ({type(error).__name__})"
    try:
        writer.write(REQUEST)
        reply = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT_S)
    except TimeoutError:
        return "no answer"
    except OSError as error:
        return f"reset ({type(error).__name__})"
    finally:
        writer.transport.abort()
    if reply == expected:
        return "served"
    return reply.strip().decode(errors="replace") if reply else "closed"


async def _attack(port: int, settings: Settings, expected: bytes) -> Figures:
    slow = _Slow(settings.slow_clients)
    tasks = [asyncio.create_task(_trickle(port, slow)) for _ in range(settings.slow_clients)]
    try:
        await slow.in_place.wait()  # bounded: each connect gives up after CONNECT_TIMEOUT_S
        await asyncio.sleep(settings.duration)
        holding = slow.open
        answers = Counter(
            await asyncio.gather(*(_ask(port, expected) for _ in range(settings.normal_clients)))
        )
    finally:
        slow.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "slow_clients": settings.slow_clients,
        "slow_holding": holding,
        "slow_ended": dict(slow.ended),
        "normal_clients": settings.normal_clients,
        "served": answers.pop("served", 0),
        "refused": dict(answers),
    }


def run(server: ServerProcess, settings: Settings) -> Figures:
    expected = b"HELLO" + suffix_of(server.spec.args).encode() + b"\n"
    return asyncio.run(_attack(server.port, settings, expected))


SLOWLORIS = Scenario(
    name="slowloris",
    title="Slowloris: slow clients trickling one byte every 1.5 s against --max-connections, "
    "then normal clients each send one line",
    flags=lambda settings: ("--max-connections", str(settings.max_connections)),
    run=run,
    columns=(
        Column("slow clients", "slow_clients"),
        Column("holding a slot when normal clients came", "slow_holding"),
        Column("slow clients' fate", "slow_ended", "text"),
        Column("normal clients", "normal_clients"),
        Column("served", "served"),
        Column("not served", "refused", "text"),
    ),
)
