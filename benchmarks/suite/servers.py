"""The servers of the matrix, and one launcher that runs any of them.

Every server runs in its own process on a free port and announces where it
listens: aioecho through its readiness pipe (the shared launcher of
:mod:`aioecho.process.launch`), the baselines by printing
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
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aioecho.process.launch import LaunchError, launch_server

from . import proc

BASELINES = Path(__file__).resolve().parent.parent / "servers"
HOST = "127.0.0.1"
# One listen queue for every server, aioecho included (its own default is
# 1024): a burst of connects must meet the same queue whichever server takes it.
BACKLOG = 4096
READY = re.compile(rb"listening on \[?([^\]\s]+?)\]?:(\d+)")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
# How long a multi-process server gets to start its workers after announcing.
WORKERS_TIMEOUT = 5.0
LOG_TAIL = 20


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


def _baseline(name: str, description: str, file: str) -> ServerSpec:
    return ServerSpec(name, description, (str(BASELINES / file),))


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
        _baseline("threads", "socketserver.ThreadingTCPServer", "threads.py"),
    )
}


class ServerProcess:
    """A running server: its address, its resource use, its fate."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = 0
        self._ready = threading.Event()
        self._log: deque[bytes] = deque(maxlen=LOG_TAIL)
        env = {**os.environ, **spec.env} if spec.env else None
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "env": env}
        if spec.is_aioecho:
            try:
                launched = launch_server(spec.command, timeout=START_TIMEOUT, **pipes)
            except LaunchError as exc:
                self._log.extend(exc.process.communicate()[1].splitlines())
                raise ServerError(f"{exc}: {self.last_line()}") from None
            self.process = launched.process
            self.port = launched.address[1]
            self._ready.set()
        else:
            self.process = subprocess.Popen(spec.command, **pipes)
        self._readers = [
            threading.Thread(target=self._drain, args=(pipe,), daemon=True)
            for pipe in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def wait_ready(self) -> None:
        """Block until the server announced its port and runs all its processes."""
        if not self._ready.wait(START_TIMEOUT) or not self.port:
            # An output pipe closed: it is probably exiting.
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
        return [line.decode(errors="replace").rstrip() for line in self._log]

    def last_line(self) -> str:
        lines = [line.strip() for line in self._log if line.strip()]
        return lines[-1].decode(errors="replace") if lines else "no output"

    def stop(self) -> None:
        """SIGTERM, then wait; kill if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(timeout=1)

    def _wait_processes(self) -> bool:
        waited = threading.Event()
        for _ in range(int(WORKERS_TIMEOUT * 10)):
            if len(self.pids()) >= self.spec.processes:
                return True
            waited.wait(0.1)
        return False

    def _drain(self, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        with pipe:
            for line in pipe:
                self._log.append(line)
                if not self._ready.is_set() and (match := READY.search(line)):
                    self.port = int(match.group(2))
                    self._ready.set()
        self._ready.set()  # no announcement can come through this pipe any more


@contextlib.contextmanager
def running(spec: ServerSpec) -> Iterator[ServerProcess]:
    """Start ``spec``'s server, wait until it serves, stop it on the way out."""
    server = ServerProcess(spec)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
