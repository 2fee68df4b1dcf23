"""Scrapes: one client opens a silent connection to /metrics every 20 ms; can Prometheus scrape?

The blinder connects from 127.0.0.2, sends nothing, and keeps each
connection until the server closes it. The scraper, from 127.0.0.1 as
Prometheus would come from its own address, sends ``GET /metrics`` every
``SCRAPE_EVERY_S`` and gives each scrape ``SCRAPE_TIMEOUT_S``. After the
attack, one more scrape reads the server's count of refused metrics
connections.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

from .model import Column, Figures, Scenario, Settings
from .target import HOST, ServerProcess

BLINDER_SOURCE = "127.0.0.2"
OPEN_EVERY_S = 0.02
# The blinder's connections open at once, at most: bounded, and far above
# the endpoint's slots.
BLINDER_MOST = 500
HEAD_START_S = 0.5  # the blinder holds every slot it can before the first scrape
SCRAPE_EVERY_S = 0.2
SCRAPE_TIMEOUT_S = 2.0
FINAL_SCRAPE_TRIES = 20
REQUEST = b"GET /metrics HTTP/1.0\r\n\r\n"
REFUSED = re.compile(rb'^aioecho_metrics_refused_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


class _Blinder:
    """Opens a silent connection every OPEN_EVERY_S and holds each until the server closes it."""

    def __init__(self, port: int) -> None:
        self._port = port
        self.opened = 0
        self.holding = 0  # connected and not closed by the server yet
        self._held: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            if len(self._held) < BLINDER_MOST:
                task = asyncio.create_task(self._hold())
                self._held.add(task)
                task.add_done_callback(self._held.discard)
            await asyncio.sleep(OPEN_EVERY_S)

    async def stop(self) -> None:
        for task in self._held:
            task.cancel()
        await asyncio.gather(*self._held, return_exceptions=True)

    async def _hold(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                HOST, self._port, local_addr=(BLINDER_SOURCE, 0)
            )
        except OSError:
            return
        self.opened += 1
        self.holding += 1
        try:
            await reader.read()  # until the server closes it
        except OSError:
            pass
        finally:
            self.holding -= 1
            writer.transport.abort()


async def _scrape(port: int) -> tuple[str, bytes]:
    """One scrape: ``ok`` and the body, or why it failed."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port), SCRAPE_TIMEOUT_S
        )
    except (OSError, TimeoutError) as error:
        return f"connect failed ({type(error).__name__})", b""
    try:
        writer.write(REQUEST)
        response = await asyncio.wait_for(reader.read(), SCRAPE_TIMEOUT_S)
    except TimeoutError:
        return "no answer", b""
    except OSError as error:
        return f"reset ({type(error).__name__})", b""
    finally:
        writer.transport.abort()
    if response.startswith(b"HTTP/1.0 200 OK"):
        return "ok", response
    return ("closed" if not response else "not 200"), b""


async def _refused_counts(port: int) -> dict[str, int] | None:
    """The server's refused-connection counts by reason; None if it has no such metric."""
    for _ in range(FINAL_SCRAPE_TRIES):
        outcome, body = await _scrape(port)
        if outcome == "ok":
            found = {m[0].decode(): int(float(m[1])) for m in REFUSED.findall(body)}
            return found or None
        await asyncio.sleep(SCRAPE_EVERY_S)
    return None


async def _attack(port: int, settings: Settings) -> Figures:
    blinder = _Blinder(port)
    opening = asyncio.create_task(blinder.run())
    scrapes: Counter[str] = Counter()
    try:
        await asyncio.sleep(HEAD_START_S)
        end = time.monotonic() + settings.duration
        while time.monotonic() < end:
            scrapes[(await _scrape(port))[0]] += 1
            await asyncio.sleep(SCRAPE_EVERY_S)
        holding = blinder.holding
    finally:
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        await blinder.stop()
    return {
        "blinder_opened": blinder.opened,
        "blinder_holding": holding,
        "scrapes": scrapes.total(),
        "scraped": scrapes.pop("ok", 0),
        "failed": dict(scrapes),
        "refused": await _refused_counts(port),
    }


def run(server: ServerProcess, settings: Settings) -> Figures:
    if not server.metrics_port:
        raise RuntimeError("the server announced no metrics port")
    return asyncio.run(_attack(server.metrics_port, settings))


SCRAPES = Scenario(
    name="scrapes",
    title="Scrapes: one address opens a silent /metrics connection every 20 ms, "
    "another scrapes every 0.2 s",
    flags=lambda settings: ("--metrics-port", "0"),
    run=run,
    columns=(
        Column("blinder connections opened", "blinder_opened"),
        Column("open at the end", "blinder_holding"),
        Column("scrapes", "scrapes"),
        Column("succeeded", "scraped"),
        Column("failed", "failed", "text"),
        Column("refused, counted by the server", "refused", "text"),
    ),
)
