"""Memory attacks: replies nobody reads, and partial lines held open by thousands.

Both write from the runner's thread over plain non-blocking sockets (see
``sockets``) while a sampler follows the server's resident memory (VmRSS).
"""

from __future__ import annotations

import resource
import socket
import time
from collections import Counter

from . import sockets
from .model import (
    CLIENT_CPU,
    CLIENTS,
    GROWTH,
    REFUSED,
    RSS_BEFORE,
    RSS_PEAK,
    SENT,
    Column,
    Figures,
    Scenario,
    Settings,
    mib,
)
from .target import PeakMemory, ServerProcess, open_files

AMPLIFYING_SUFFIX = "S" * 60  # an empty line is answered with 61 bytes
EMPTY_LINES = b"\n" * 65536
# Nothing written for this long: the server stopped reading every connection.
STALL_S = 1.0
# After the reset, give the server this long to drop the connections.
AFTER_RESET_S = 2.0
PARTIAL_LINE = b"a" * 65535  # one byte short of the default --max-line, no LF
FILL_LIMIT_S = 120.0  # bounds the writing however slowly the server reads
# After the last byte is written the server may still be reading what the
# kernel holds for it: wait until its memory grows less than SETTLED_GROWTH
# in SETTLE_S, for at most SETTLE_LIMIT_S.
SETTLE_S = 1.0
SETTLED_GROWTH = 1024 * 1024
SETTLE_LIMIT_S = 30.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def settle(server: ServerProcess) -> None:
    """Wait until the server's resident memory stops growing (or the limit passes)."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    last = server.rss_bytes()
    while time.monotonic() < deadline:
        time.sleep(SETTLE_S)
        now = server.rss_bytes()
        if now - last < SETTLED_GROWTH:
            return
        last = now


def amplify(server: ServerProcess, settings: Settings) -> Figures:
    """Clients send empty lines and never read; RSS before, at peak, after they reset."""
    before, files_before = server.rss_bytes(), open_files(server)
    connect_errors: Counter[str] = Counter()
    socks = sockets.connect_many(server.port, settings.amplifiers, connect_errors)
    cpu_start, start = _cpu_s(), time.monotonic()
    try:
        with PeakMemory(server) as peak:
            sent = sockets.fill(socks, EMPTY_LINES, None, start + settings.duration, STALL_S)
            writing_s = time.monotonic() - start
            files_during = open_files(server)
    finally:
        sockets.reset_all(socks)
    client_cpu = (_cpu_s() - cpu_start) / max(writing_s, 1e-9)
    time.sleep(AFTER_RESET_S)
    after = server.rss_bytes()
    return {
        "server_files_before": files_before,
        "server_files_writing": files_during,
        "server_files_after": open_files(server),
        "clients": len(socks),
        "connect_errors": dict(connect_errors),
        "sent_mib": mib(sent),
        "writing_s": writing_s,
        "client_cpu": client_cpu,
        "rss_before_mib": mib(before),
        "rss_peak_mib": mib(peak.peak),
        "rss_after_mib": mib(after),
        "growth_mib": mib(peak.peak - before),
        "growth_per_client_mib": mib(peak.peak - before) / max(len(socks), 1),
        "kept_after_reset_mib": mib(after - before),
    }


def hold(server: ServerProcess, settings: Settings) -> Figures:
    """Many connections each hold an unterminated 65,535-byte line; RSS growth, refusals."""
    before = server.rss_bytes()
    connect_errors: Counter[str] = Counter()
    cpu_start, start = _cpu_s(), time.monotonic()
    socks: list[socket.socket] = []
    try:
        with PeakMemory(server) as peak:
            socks = sockets.connect_many(server.port, settings.holders, connect_errors)
            sent = sockets.fill(
                socks, PARTIAL_LINE, len(PARTIAL_LINE), start + FILL_LIMIT_S, STALL_S * 5
            )
            settle(server)
            ended = sockets.fates(socks)
        client_s = time.monotonic() - start
    finally:
        sockets.reset_all(socks)
    held = ended.pop("open", 0)
    return {
        "connections": settings.holders,
        "connect_errors": dict(connect_errors),
        "held": held,
        "refused": dict(ended),
        "sent_mib": mib(sent),
        "client_cpu": (_cpu_s() - cpu_start) / client_s,
        "rss_before_mib": mib(before),
        "rss_peak_mib": mib(peak.peak),
        "growth_mib": mib(peak.peak - before),
        "held_data_mib": mib(held * len(PARTIAL_LINE)),
    }


AMPLIFICATION = Scenario(
    name="amplification",
    title="Reply amplification: clients send empty lines (--suffix of 60 characters) "
    "and never read, then reset",
    flags=lambda settings: ("--suffix", AMPLIFYING_SUFFIX),
    run=amplify,
    columns=(
        CLIENTS,
        SENT,
        CLIENT_CPU,
        RSS_BEFORE,
        RSS_PEAK,
        Column("RSS after reset MiB", "rss_after_mib", "float"),
        GROWTH,
        Column("growth per client MiB", "growth_per_client_mib", "float"),
        Column("kept after reset MiB", "kept_after_reset_mib", "float"),
        Column(
            "server descriptors before / writing / after reset",
            "server_files_before|server_files_writing|server_files_after",
        ),
    ),
)

GLOBAL_MEMORY = Scenario(
    name="memory",
    title="Global memory: many connections each hold an unterminated 65,535-byte line",
    flags=lambda settings: (),
    run=hold,
    columns=(
        Column("connections", "connections"),
        Column("held", "held"),
        REFUSED,
        Column("connect errors", "connect_errors", "text"),
        Column("data held MiB", "held_data_mib", "float"),
        RSS_BEFORE,
        RSS_PEAK,
        GROWTH,
        CLIENT_CPU,
    ),
)
