"""Start ``python -m aioecho`` in a child process and wait until it accepts.

The one launcher of the tests, the load harness and the benchmark suite: it
passes the child a pipe with ``--ready-fd`` and reads the readiness line
(:mod:`aioecho.process.readiness`) from it, instead of reading the log. A
child that exits first closes the pipe, so a failed start is known at once.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .readiness import Readiness

START_TIMEOUT = 15.0


class LaunchError(RuntimeError):
    """The server exited, or did not become ready in time; the message says which."""

    def __init__(self, message: str, process: subprocess.Popen[bytes]) -> None:
        super().__init__(message)
        self.process = process
        """The child, exited or killed."""


@dataclass
class LaunchedServer:
    """A child process serving, and what it announced."""

    process: subprocess.Popen[bytes]
    ready: Readiness

    @property
    def address(self) -> tuple[str, int]:
        """Its first TCP address."""
        return self.ready.addresses[0]


def aioecho_command(*args: str) -> list[str]:
    """The command line of ``python -m aioecho`` with ``args``, on this interpreter."""
    return [sys.executable, "-m", "aioecho", *args]


def launch_server(
    command: Sequence[str], *, timeout: float = START_TIMEOUT, **popen: Any
) -> LaunchedServer:
    """Run ``command`` (an aioecho serve command line) with ``--ready-fd``; wait until ready.

    ``popen`` goes to :class:`subprocess.Popen` (stdout, stderr, env, ...).
    Raises :class:`LaunchError` if the server exits first or is not ready
    within ``timeout`` seconds (then it is killed).
    """
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [*command, "--ready-fd", str(write_fd)],
            pass_fds=(write_fd, *popen.pop("pass_fds", ())),
            **popen,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    deadline = time.monotonic() + timeout
    try:
        line = _read_line(read_fd, deadline)
    finally:
        os.close(read_fd)
    if line:
        return LaunchedServer(process, Readiness.from_json(line))
    try:
        # The pipe closed (the server is exiting), or the time ran out.
        code = process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise LaunchError(f"the server was not ready within {timeout:g} s", process) from None
    raise LaunchError(f"the server exited with code {code} before it was ready", process)


def _read_line(fd: int, deadline: float) -> bytes:
    """One line from ``fd``; empty if it closed first or the monotonic ``deadline`` passed."""
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return b""
        chunk = os.read(fd, 4096)
        if not chunk:
            return b""
        data += chunk
    return data
