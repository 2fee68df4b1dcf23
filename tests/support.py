"""Helpers shared by the tests: a server in a subprocess, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

Address = tuple[str, int]

SERVING = re.compile(rb"serving on \[?([^\]\s]+?)\]?:(\d+)")


@dataclass
class ServerProcess:
    """``python -m aioecho`` running in a child process."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    startup_log: bytes


def aioecho_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aioecho", *args]


@contextlib.contextmanager
def serve_in_subprocess(
    *args: str, env: dict[str, str] | None = None, open_files: int | None = None
) -> Iterator[ServerProcess]:
    """Start the CLI server on a free port; yield once it logged where it listens.

    ``open_files`` caps the child's descriptors (soft and hard limit alike).
    """

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen(
        aioecho_command(*args, "--port", "0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        preexec_fn=limit_files,
    )
    assert process.stderr is not None
    try:
        log = b""
        for line in process.stderr:
            log += line
            match = SERVING.search(line)
            if match:
                break
        else:
            raise AssertionError(f"server did not start: {log!r}")
        yield ServerProcess(process, match.group(1).decode(), int(match.group(2)), log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()


def server_options(**options: Any) -> pytest.MarkDecorator:
    """Options for the ``server`` fixture of the marked test."""
    return pytest.mark.server_options(**options)


async def exchange(address: Address, *sends: bytes) -> bytes:
    """Send each piece separately, half-close, return all until the server closes."""
    reader, writer = await asyncio.open_connection(*address)
    for piece in sends:
        writer.write(piece)
        await writer.drain()
    writer.write_eof()
    reply = await reader.read()
    writer.close()
    return reply


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before closing; a reset ends it as well."""
    with contextlib.suppress(ConnectionResetError):
        return await reader.read()
    return b""


def connect_reader_that_never_reads(server: ServerProcess) -> socket.socket:
    """A peer the server owes replies to and that reads none of them.

    A tiny receive window, sends until the kernel refuses more, and one reply
    seen (peeked, not read) ensure the replies are owed when the test goes on.
    """
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect((server.host, server.port))
    hog.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            hog.send(b"x" * 65535 + b"\n")
    hog.setblocking(True)
    assert hog.recv(1, socket.MSG_PEEK) == b"X"
    return hog


async def until(condition: object) -> None:
    """Yield to the loop until ``condition()`` holds (the test timeout bounds it)."""
    assert callable(condition)
    # The server's counters are plain numbers with no event to wait on.
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.001)
