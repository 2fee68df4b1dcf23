"""The servers of the matrix, and one launcher that runs any of them.

Every server runs in its own process on a free port and announces where it
listens: aioecho through its readiness pipe (the package's own child-server
launcher, :mod:`aioecho.process.child`), the baselines by printing
``listening on HOST:PORT`` on stdout. Both streams are drained for the whole
run (a full pipe would stall the server) and their tail kept, so that a
server that dies can be reported with its last words.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aioecho.process.child import ChildServer, LogTail, stop_process
from aioecho.process.launch import LaunchError

from . import proc

BASELINES = Path(__file__).resolve().parent.parent / "servers"
HOST = "127.0.0.1"
# One listen queue for every server, aioecho included (its own default is
# 1024): a burst of connects must meet the same queue whichever server takes it.
BACKLOG = 4096
READY = re.compile(rb"listening on \[?([^\]\s]+?)\]?:(\d+)")
START_TIMEOUT = 15.0
READY_POLL_S = 0.05  # how often a start that has not announced is checked for an exit
STOP_TIMEOUT = 10.0
# How long a multi-process server gets to start its workers after announcing.
WORKERS_TIMEOUT = 5.0


class ServerError(RuntimeError):
    """The server did not start, or died; the message says how."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server of the matrix.

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
    def is_aioecho(self) -> bool:
        return self.args[:2] == ("-m", "aioecho")

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


def _aioecho(
    name: str,
    description: str,
    flags: tuple[str, ...],
    processes: int = 1,
    needs_flag: str | None = None,
) -> ServerSpec:
    return ServerSpec(name, description, ("-m", "aioecho", "serve", *flags), processes, needs_flag)


def _baseline(name: str, description: str, file: str, *flags: str) -> ServerSpec:
    return ServerSpec(name, description, (str(BASELINES / file), *flags))


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        _aioecho("aioecho-uvloop", "aioecho, uvloop", ("--loop", "uvloop")),
        _aioecho("aioecho-asyncio", "aioecho, stdlib asyncio loop", ("--loop", "asyncio")),
        _aioecho(
            "aioecho-workers2",
            "aioecho --workers 2, uvloop",
            ("--workers", "2", "--loop", "uvloop"),
            processes=2,
            needs_flag="--workers",
        ),
        _baseline("streams", "asyncio.start_server + readline()", "streams_readline.py"),
        _baseline("selectors", "tutorial's selectors callbacks (epoll)", "selectors_callbacks.py"),
        _baseline("select", "tutorial's select.select loop", "select_loop.py"),
        _baseline("poll", "select.poll loop", "poll_loop.py"),
        _baseline("epoll", "select.epoll loop, level-triggered", "epoll_loop.py"),
        _baseline("trio", "trio serve_listeners, a task per connection", "trio_server.py"),
        _baseline("anyio-asyncio", "anyio receive_until, asyncio backend", "anyio_server.py"),
        _baseline(
            "anyio-trio",
            "anyio receive_until, trio backend",
            "anyio_server.py",
            "--backend",
            "trio",
        ),
        _baseline("gevent", "gevent StreamServer, a greenlet per connection", "gevent_server.py"),
        _baseline("twisted", "Twisted LineReceiver, epoll reactor", "twisted_server.py"),
        _baseline("threads", "socketserver.ThreadingTCPServer", "threads.py"),
    )
}


class ServerProcess:
    """A running server: its address, its resource use, its fate."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = 0
        self.metrics_port = 0  # announced by aioecho with --metrics-port, else 0
        self._ready = threading.Event()
        env = {**os.environ, **spec.env} if spec.env else None
        if spec.is_aioecho:
            try:
                child = ChildServer.start(spec.command, timeout=START_TIMEOUT, env=env)
            except LaunchError as exc:
                raise ServerError(str(exc)) from None
            self.process, self.log = child.process, child.log
            self.port = child.address[1]
            self.metrics_port = child.ready.metrics[0][1] if child.ready.metrics else 0
            self._ready.set()
            return
        self.log = LogTail(on_line=self._announced)
        self.process = subprocess.Popen(
            spec.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for pipe in (self.process.stdout, self.process.stderr):
            self.log.follow(pipe)

    def wait_ready(self) -> None:
        """Block until the server announced its port and runs all its processes."""
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(READY_POLL_S):
            if self.process.poll() is not None or time.monotonic() > deadline:
                break  # exited, or too slow: either way it will not announce
        if not self.port:
            self.log.join()  # its last words
            raise ServerError(self.death(1.0) or f"did not announce a port in {START_TIMEOUT:g} s")
        if self.spec.processes > 1 and not self._wait_processes():
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
        how = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        return f"server died ({how}): {self.last_line()}"

    def log_tail(self) -> list[str]:
        """The last lines the server wrote to stdout and stderr, oldest first."""
        return [line.decode(errors="replace").rstrip() for line in self.log.lines]

    def last_line(self) -> str:
        return self.log.last()

    def stop(self) -> None:
        """SIGTERM, then wait; kill if it does not stop in time."""
        stop_process(self.process, STOP_TIMEOUT)
        self.log.join()

    def _wait_processes(self) -> bool:
        waited = threading.Event()
        for _ in range(int(WORKERS_TIMEOUT * 10)):
            if len(self.pids()) >= self.spec.processes:
                return True
            waited.wait(0.1)
        return False

    def _announced(self, line: bytes) -> None:
        """A baseline's output line: the one that says where it listens makes it ready."""
        if not self._ready.is_set() and (match := READY.search(line)):
            self.port = int(match.group(2))
            self._ready.set()


@contextlib.contextmanager
def running(spec: ServerSpec) -> Iterator[ServerProcess]:
    """Start ``spec``'s server, wait until it serves, stop it on the way out."""
    server = ServerProcess(spec)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
