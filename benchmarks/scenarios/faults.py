"""Faults and TLS against the memory budget, faulted streams beside neighbours, idle pacing.

- **outbox-*** and **tls-memory**: clients send empty lines and never read;
  the server's resident growth is set against what its memory budget counted
  (the ``buffered=`` figure of its last stats line).
- **fault-neighbours**: ping-pong neighbours alone, then beside four clients
  streaming empty lines under ``--jitter 1ms``.
- **drop-neighbours**: the same beside streams under ``--drop 0.01``.
- **fragment-idle**: clients each send one 64 KiB line to a ``--fragment 1``
  server and then neither send nor read; the server's CPU is set against the
  bytes it sent meanwhile.
- **fragment-full**: the same with clients whose 4 KiB receive windows fill,
  measured once the server has stopped sending: pacing that costs nothing
  while nothing can be sent.
- **kernel-buffers**, **kernel-buffers-capped**: clients with 4 KiB receive
  windows send lines and never read; the kernel memory of the server's send
  queues, without and with ``--sndbuf 64k``.
"""

from __future__ import annotations

import functools
import re
import socket
import ssl
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from . import neighbours, sockets
from .beside import beside_neighbours
from .memory import EMPTY_LINES, STALL_S, settle
from .model import CLIENTS, REFUSED, SENT, Column, Figures, Scenario, Settings, mib, ratio
from .neighbours import Measure
from .target import PeakMemory, ServerProcess

STATS_INTERVAL = ("--stats-interval", "0.2")
BUDGET = ("--max-client-memory", "64M")
BUFFERED = re.compile(r"\bbuffered=(\d+)B")
OUT = re.compile(r"\bout=(\d+)B")
# Two stats lines: the last one was written after the memory settled.
COUNT_WAIT_S = 0.5
FILL_LIMIT_S = 60.0
TLS_FILL_S = 5.0
STREAMERS = 4
STREAM_RATE = 250_000  # bytes/s of empty lines per streaming client: 1 MB/s together
LONG_LINE = b"a" * 65535 + b"\n"
IDLE_RAMP_S = 1.0
SMALL_WINDOW = 4096  # a client's SO_RCVBUF: the kernel offers about this much window
KERNEL_CLIENTS = 20
REQUEST_LINE = b"x" * 1023 + b"\n"
# ss's socket memory: w is what the socket's send queue holds (sk_wmem_queued).
QUEUED = re.compile(r"\bw(\d+)")


def last_figure(server: ServerProcess, pattern: re.Pattern[str]) -> int | None:
    """A figure of the server's latest stats line, or None before its first."""
    for line in reversed(server.log_tail()):
        if found := pattern.search(line):
            return int(found.group(1))
    return None


@functools.cache
def _certificates() -> tuple[str, str, str]:
    """A throw-away CA and a localhost certificate: (cert, key, CA) file paths."""
    import trustme  # a test dependency: only the TLS scenario needs it

    folder = Path(tempfile.mkdtemp(prefix="aioecho-abuse-tls-"))
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    paths = [folder / name for name in ("cert.pem", "key.pem", "ca.pem")]
    issued.private_key_and_cert_chain_pem.write_to_path(str(paths[0]))
    issued.private_key_pem.write_to_path(str(paths[1]))
    ca.cert_pem.write_to_path(str(paths[2]))
    return (str(paths[0]), str(paths[1]), str(paths[2]))


def _tls_flags(settings: Settings) -> tuple[str, ...]:
    cert, key, _ = _certificates()
    return ("--tls-cert", cert, "--tls-key", key, *BUDGET, *STATS_INTERVAL)


def _written(socks: list[socket.socket], errors: Counter[str], sent: int) -> Figures:
    """The figures every filling scenario starts with: clients, connect errors, MiB sent."""
    return {"clients": len(socks), "connect_errors": dict(errors), "sent_mib": mib(sent)}


def _settled(server: ServerProcess, before: int) -> tuple[int, int]:
    """Once the server's memory stopped growing: what its budget counted, and its RSS growth."""
    settle(server)
    time.sleep(COUNT_WAIT_S)
    return last_figure(server, BUFFERED) or 0, server.rss_bytes() - before


def held_against_counted(server: ServerProcess, settings: Settings, tls: bool = False) -> Figures:
    """Non-readers send empty lines (64 KiB each; TLS: until the server stops reading)."""
    context = ssl.create_default_context(cafile=_certificates()[2]) if tls else None
    before = server.rss_bytes()
    errors: Counter[str] = Counter()
    socks = sockets.connect_many(server.port, settings.amplifiers, errors, context)
    try:
        with PeakMemory(server) as peak:
            total, limit = (None, TLS_FILL_S) if tls else (len(EMPTY_LINES), FILL_LIMIT_S)
            sent = sockets.fill(socks, EMPTY_LINES, total, time.monotonic() + limit, STALL_S)
            counted, resident = _settled(server, before)
            ended = sockets.fates(socks)
    finally:
        sockets.reset_all(socks)
    return {
        **_written(socks, errors, sent),
        "growth_mib": mib(resident),
        "peak_growth_mib": mib(peak.peak - before),
        "counted_mib": mib(counted),
        "growth_per_counted": ratio(resident, counted),
        "open": ended.pop("open", 0),
        "refused": dict(ended),
    }


def paced_idle(server: ServerProcess, settings: Settings, window: int | None = None) -> Figures:
    """Clients each send one long line, then neither send nor read: server CPU vs bytes out.

    With a receive ``window``, the CPU is measured once the server has sent
    all the clients' windows take.
    """
    errors: Counter[str] = Counter()
    socks = sockets.connect_many(server.port, settings.paced_clients, errors, receive_buffer=window)
    try:
        sockets.fill(socks, LONG_LINE, len(LONG_LINE), time.monotonic() + FILL_LIMIT_S, STALL_S)
        if window is None:
            time.sleep(IDLE_RAMP_S)
        else:
            _until_nothing_sent(server)
        cpu_before, sent_before = server.cpu_seconds(), last_figure(server, OUT) or 0
        start = time.monotonic()
        time.sleep(settings.duration)
        seconds = time.monotonic() - start
        cpu = (server.cpu_seconds() - cpu_before) / seconds
        out = ((last_figure(server, OUT) or 0) - sent_before) / seconds
    finally:
        sockets.reset_all(socks)
    return {
        "clients": len(socks),
        "connect_errors": dict(errors),
        "server_cpu": cpu,
        "sent_per_s": out,
        "cpu_us_per_byte": cpu / out * 1e6 if out else None,
    }


def _until_nothing_sent(server: ServerProcess) -> None:
    """Wait until the server's stats lines show no more bytes out (or the fill limit passes)."""
    deadline, last = time.monotonic() + FILL_LIMIT_S, None
    while time.monotonic() < deadline:
        time.sleep(COUNT_WAIT_S)
        out = last_figure(server, OUT)
        if out is not None and out == last:
            return
        last = out


def kernel_queued(port: int) -> int:
    """Bytes the kernel holds in the send queues of the server's connections on ``port``."""
    listed = subprocess.run(
        ["ss", "-tmnH", "state", "established", "sport", "=", f":{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(found.group(1)) for found in QUEUED.finditer(listed))


def kernel_held(server: ServerProcess, settings: Settings) -> Figures:
    """Clients with small windows send lines until the server stops reading, and never read."""
    errors: Counter[str] = Counter()
    socks = sockets.connect_many(server.port, KERNEL_CLIENTS, errors, receive_buffer=SMALL_WINDOW)
    before = server.rss_bytes()
    try:
        sent = sockets.fill(socks, REQUEST_LINE, None, time.monotonic() + FILL_LIMIT_S, STALL_S)
        counted, resident = _settled(server, before)
        queued = kernel_queued(server.port)
    finally:
        sockets.reset_all(socks)
    return {
        **_written(socks, errors, sent),
        "kernel_mib": mib(queued),
        "kernel_kib_per_client": queued / 1024 / max(1, len(socks)),
        "growth_mib": mib(resident),
        "counted_mib": mib(counted),
    }


COUNTED = Column("counted MiB", "counted_mib", "float")
MEMORY_COLUMNS = (
    CLIENTS,
    SENT,
    Column("RSS growth MiB (peak)", "growth_mib|peak_growth_mib", "float"),
    COUNTED,
    Column("growth ÷ counted", "growth_per_counted", "ratio"),
    Column("still open", "open"),
    REFUSED,
)


def _outbox(name: str, *fault: str) -> Scenario:
    return Scenario(
        name=f"outbox-{name}",
        title=f"Fault outbox under `{' '.join(fault)}`, `--max-client-memory 64M`: "
        "clients send 64 KiB of empty lines each and never read",
        flags=lambda settings: (*fault, *BUDGET, *STATS_INTERVAL),
        run=held_against_counted,
        columns=MEMORY_COLUMNS,
    )


OUTBOX_SCENARIOS = (
    _outbox("delay", "--delay", "5m"),
    _outbox("jitter", "--jitter", "5m"),
    _outbox("bandwidth", "--bandwidth", "100"),
    _outbox("fragment", "--fragment", "1"),
)

TLS_MEMORY = Scenario(
    name="tls-memory",
    title="TLS, `--max-client-memory 64M`: clients send empty lines and never read",
    flags=_tls_flags,
    run=functools.partial(held_against_counted, tls=True),
    columns=MEMORY_COLUMNS,
)


def _neighbours(name: str, *fault: str, measure: Measure = neighbours.measure) -> Scenario:
    return beside_neighbours(
        name,
        f"Faulted streams: 10 ping-pong neighbours alone, then beside {STREAMERS} "
        f"clients streaming empty lines at {STREAMERS * STREAM_RATE // 1000} KB/s together, "
        f"`{' '.join(fault)}` on every connection",
        fault,
        b"\n",
        STREAM_RATE,
        STREAMERS,
        measure,
    )


PACED_COLUMNS = (
    CLIENTS,
    Column("server CPU", "server_cpu", "cores"),
    Column("bytes sent/s", "sent_per_s", "rps"),
    Column("CPU µs per byte sent", "cpu_us_per_byte", "float"),
)

FRAGMENT_IDLE = Scenario(
    name="fragment-idle",
    title="Idle pacing: clients each send one 64 KiB line to `--fragment 1`, "
    "then neither send nor read",
    flags=lambda settings: ("--fragment", "1", *STATS_INTERVAL),
    run=paced_idle,
    columns=PACED_COLUMNS,
)

FRAGMENT_FULL = Scenario(
    name="fragment-full",
    title="Pacing with nothing to send: clients with 4 KiB receive windows each send one "
    "64 KiB line to `--fragment 100`, then neither send nor read; measured once the "
    "server has stopped sending",
    flags=lambda settings: ("--fragment", "100", *STATS_INTERVAL),
    run=functools.partial(paced_idle, window=SMALL_WINDOW),
    columns=PACED_COLUMNS,
)


def _kernel_buffers(name: str, *flags: str) -> Scenario:
    return Scenario(
        name=name,
        title=f"Kernel send queues{' under `' + ' '.join(flags) + '`' if flags else ''}: "
        f"{KERNEL_CLIENTS} clients with 4 KiB receive windows send 1 KiB lines until the "
        "server stops reading, and never read",
        flags=lambda settings: (*flags, *STATS_INTERVAL),
        run=kernel_held,
        columns=(
            CLIENTS,
            SENT,
            Column("kernel send queues MiB", "kernel_mib", "float"),
            Column("KiB per client", "kernel_kib_per_client", "float"),
            Column("RSS growth MiB", "growth_mib", "float"),
            COUNTED,
        ),
    )


FAULT_SCENARIOS = (
    *OUTBOX_SCENARIOS,
    TLS_MEMORY,
    _neighbours("fault-neighbours", "--jitter", "1ms"),
    # The neighbours' own lines are dropped too: they count them and go on.
    _neighbours("drop-neighbours", "--drop", "0.01", measure=neighbours.measure_tolerant),
    FRAGMENT_IDLE,
    FRAGMENT_FULL,
    _kernel_buffers("kernel-buffers"),
    _kernel_buffers("kernel-buffers-capped", "--sndbuf", "64k"),
)
