"""Supervisor pause: SIGSTOP the parent of ``--workers 2`` while clients talk to the workers.

A container pause, a debugger or heavy swapping stops the supervisor, not
the service: its workers go on serving. The scenario stops the parent for
``PAUSE_S`` (longer than the default ``--worker-timeout`` of 5 s), lets it
go on, and watches for ``AFTER_S``: the supervisor must not take its own
stall for hung workers. Every client sends a line every ``PING_S`` and waits
for the answer, the whole time.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from .model import CLIENTS, Column, Figures, Scenario, Settings
from .target import HOST, ServerProcess, suffix_of

PAUSE_S = 8.0
AFTER_S = 6.0
# Let the workers settle before the stop, and each client breathe between lines.
SETTLE_S = 1.0
PING_S = 0.05
ANSWER_TIMEOUT_S = 5.0


class _Client(threading.Thread):
    """One connection that pings until told to stop; whether it lost its connection."""

    def __init__(self, port: int, reply: bytes, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.reply = reply
        self.stop = stop
        self.answered = 0
        self.dropped: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection((HOST, self.port), timeout=ANSWER_TIMEOUT_S) as sock:
                lines = sock.makefile("rb")
                while not self.stop.wait(PING_S):
                    sock.sendall(b"ping\n")
                    if lines.readline() != self.reply:
                        raise ConnectionError("closed")
                    self.answered += 1
        except OSError as error:
            self.dropped = type(error).__name__


def run(server: ServerProcess, settings: Settings) -> Figures:
    parent = server.process.pid
    workers = set(server.pids()) - {parent}
    reply = b"PING" + suffix_of(settings.server_args).encode() + b"\n"
    stop = threading.Event()
    clients = [_Client(server.port, reply, stop) for _ in range(settings.normal_clients)]
    for client in clients:
        client.start()
    try:
        time.sleep(SETTLE_S)
        before = sum(client.answered for client in clients)
        os.kill(parent, signal.SIGSTOP)
        try:
            time.sleep(PAUSE_S)
            during = sum(client.answered for client in clients) - before
        finally:
            os.kill(parent, signal.SIGCONT)
        time.sleep(AFTER_S)
        after = sum(client.answered for client in clients) - before - during
        replaced = len(workers - set(server.pids()))
    finally:
        stop.set()
        for client in clients:
            client.join()
    dropped = [client for client in clients if client.dropped is not None]
    return {
        "clients": len(clients),
        "dropped": len(dropped),
        "workers_replaced": replaced,
        "answered_paused": during,
        "answered_after": after,
    }


SUPERVISOR_PAUSE = Scenario(
    name="pause",
    title=(
        f"The supervisor of --workers 2 stopped (SIGSTOP) for {PAUSE_S:g} s, then watched "
        f"for {AFTER_S:g} s, while clients ping its workers every {PING_S * 1000:g} ms"
    ),
    flags=lambda settings: ("--workers", "2"),
    run=run,
    columns=(
        CLIENTS,
        Column("dropped", "dropped"),
        Column("workers killed", "workers_replaced"),
        Column("answers while paused", "answered_paused"),
        Column("answers after", "answered_after"),
    ),
)
