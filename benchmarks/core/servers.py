"""Servers in child processes, as every benchmark starts them.

Every server, aioecho, a baseline of ``benchmarks.servers`` or the C server,
is started by aioecho's own child-server launcher
(:class:`aioecho.process.child.ChildServer`): it announces where it listens
on the readiness pipe (``--ready-fd``), its stderr is drained for the whole
run (a full pipe would stall it) and its tail kept, so that a server that
dies can be reported with its last words. Each runs with the environment of
:func:`child_env`, where ``python -m benchmarks.servers.NAME`` finds its module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aioecho.process.child import ChildServer
from aioecho.process.launch import LaunchError

from . import proc

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# One listen queue for every server, aioecho included (its own default is
# 1024): a burst of connects must meet the same queue whichever server takes it.
BACKLOG = 4096
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
# How long a multi-process server gets to start its workers after announcing.
WORKERS_TIMEOUT = 5.0
WORKERS_POLL_S = 0.1


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: this one's, with ``extra``, and the
    repository root last on PYTHONPATH, so that the child finds this package
    however it was started, and the same ``aioecho`` as this process does."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (env.get("PYTHONPATH"), str(ROOT))))
    return env


class ServerError(RuntimeError):
    """The server did not start, or died; the message says how."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: ``python ARGS --host HOST --port 0 --backlog BACKLOG``.

    ``processes`` is how many processes the server must show once serving:
    ``--workers 2`` that silently serves in one process is not that server.
    ``env`` holds variables set for the server on top of this process's own.
    """

    name: str
    description: str
    args: tuple[str, ...]
    processes: int = 1
    needs_flag: str | None = None  # an aioecho flag this server depends on
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def command(self) -> list[str]:
        address = ("--host", HOST, "--port", "0", "--backlog", str(BACKLOG))
        return [sys.executable, *self.args, *address]

    def unavailable(self) -> str | None:
        """Why this server cannot run here, or ``None`` when it can."""
        if self.needs_flag is None:
            return None
        usage = subprocess.run(
            [sys.executable, "-m", "aioecho", "serve", "--help"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if self.needs_flag not in usage:
            return f"this aioecho has no {self.needs_flag} flag"
        return None


def aioecho(
    name: str,
    description: str,
    flags: Sequence[str],
    processes: int = 1,
    needs_flag: str | None = None,
) -> ServerSpec:
    """``python -m aioecho serve FLAGS``."""
    args = ("-m", "aioecho", "serve", *flags)
    return ServerSpec(name, description, args, processes, needs_flag)


def baseline(name: str, description: str, module: str, *flags: str) -> ServerSpec:
    """``python -m benchmarks.servers.MODULE FLAGS``."""
    return ServerSpec(name, description, ("-m", f"benchmarks.servers.{module}", *flags))


class ServerProcess:
    """A running server: its address, its resource use, its fate."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        env = child_env(spec.env)
        try:
            child = ChildServer.start(spec.command, timeout=START_TIMEOUT, env=env)
        except LaunchError as exc:
            raise ServerError(str(exc)) from None
        self.child = child
        self.process, self.log = child.process, child.log
        self.port = child.port
        # Announced by aioecho with --metrics-port, else 0.
        self.metrics_port = child.ready.metrics[0][1] if child.ready.metrics else 0

    def wait_workers(self) -> None:
        """Block until the server runs all its processes."""
        waited = threading.Event()
        for _ in range(int(WORKERS_TIMEOUT / WORKERS_POLL_S)):
            if len(self.pids()) >= self.spec.processes:
                return
            waited.wait(WORKERS_POLL_S)
        raise ServerError(
            f"expected {self.spec.processes} processes, found {len(self.pids())} "
            f"after {WORKERS_TIMEOUT:g} s"
        )

    def pids(self) -> list[int]:
        return proc.tree(self.process.pid)

    def cpu_seconds(self) -> float:
        return proc.cpu_seconds(self.pids())

    def rss_bytes(self) -> int:
        return proc.rss_bytes(self.pids())

    def death(self, grace: float = 0.0) -> str | None:
        """How the server ended, with its last log line, or ``None`` while it runs.

        ``grace`` is how long to give a server that may be on its way out:
        its clients see the connections reset before it has exited.
        """
        try:
            status = self.process.wait(grace)
        except subprocess.TimeoutExpired:
            return None
        self.log.join()  # its last words
        how = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        return f"server died ({how}): {self.last_line()}"

    def log_tail(self) -> list[str]:
        """The last lines the server wrote to stderr, oldest first."""
        return [line.decode(errors="replace").rstrip() for line in self.log.lines]

    def last_line(self) -> str:
        return self.log.last()

    def stop(self) -> None:
        """SIGTERM, then wait; kill if it does not stop in time."""
        self.child.stop(STOP_TIMEOUT)


@contextlib.contextmanager
def running(spec: ServerSpec) -> Iterator[ServerProcess]:
    """Start ``spec``'s server, wait until it serves, stop it on the way out."""
    server = ServerProcess(spec)
    try:
        if spec.processes > 1:
            server.wait_workers()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def all_running(specs: Sequence[ServerSpec]) -> Iterator[dict[str, ServerProcess]]:
    """Every server started (and stopped on the way out), by name."""
    with contextlib.ExitStack() as stack:
        yield {spec.name: stack.enter_context(running(spec)) for spec in specs}
