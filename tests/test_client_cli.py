"""``python -m aioecho client`` against misbehaving servers, as a real subprocess.

Every failure must end the same way: exit code 1, one line on stderr, no
traceback, bounded memory. Each case runs on both loops (``--loop``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import pty
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from .rogue import (
    ENDLESS_BOUNDED,
    Behaviour,
    RogueServer,
    answers_in_plain_text,
    closes_mid_reply,
    closes_without_reply,
    endless_line,
    rogue_server,
    silent,
    streams_replies,
)
from .support import (
    aioecho_command,
    refusal_from_a_real_start,
    serve_in_subprocess,
)

LOOPS = ("asyncio", "uvloop")
PROMPT = b">>: "
PEAK_RSS_SCRIPT = Path(__file__).with_name("peak_rss.py")
READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}
# Far above a client's own size, far below what an endless line would cost it.
PEAK_RSS_BOUND = 128 * 1024 * 1024


@dataclass
class Exited:
    """A finished client: its exit code and output."""

    returncode: int
    stdout: bytes
    stderr: bytes
    peak_rss: int | None
    """Its peak resident memory in bytes, when measured."""


@dataclass
class Client:
    """A client subprocess."""

    process: subprocess.Popen[bytes]
    stdout: int | IO[bytes]
    stderr: IO[bytes]
    peak_rss_file: str | None

    def wait(self) -> Exited:
        """Wait for the client to end (the test's timeout bounds the wait)."""
        returncode = self.process.wait()
        peak_rss = None
        if self.peak_rss_file is not None:
            with open(self.peak_rss_file) as report:
                peak_rss = int(report.read())
        return Exited(returncode, _read_back(self.stdout), _read_back(self.stderr), peak_rss)

    def has_output(self) -> bool:
        """Whether the client wrote to its stdout file (without moving its offset)."""
        assert not isinstance(self.stdout, int)
        return os.fstat(self.stdout.fileno()).st_size > 0


def _read_back(file: int | IO[bytes]) -> bytes:
    if isinstance(file, int):
        return b""
    file.seek(0)
    return file.read()


@contextlib.contextmanager
def started_client(
    args: list[str],
    stdin: int | IO[bytes],
    stdout: int | IO[bytes],
    stderr: int | None = None,
    measure_memory: bool = False,
) -> Iterator[Client]:
    """``python -m aioecho client ARGS``, killed at the end if still running.

    Its stderr goes to ``stderr``, or to a file that :meth:`Client.wait`
    reads. ``measure_memory`` runs it under ``peak_rss.py`` (signals
    then reach that process, not the client).
    """
    with tempfile.TemporaryFile() as stderr_file, tempfile.TemporaryDirectory() as scratch:
        command = aioecho_command("client", *args)
        peak_rss_file = None
        if measure_memory:
            peak_rss_file = os.path.join(scratch, "peak_rss")
            command = [sys.executable, str(PEAK_RSS_SCRIPT), peak_rss_file, *command]
        errors = stderr_file if stderr is None else stderr
        process = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=errors)
        try:
            yield Client(process, stdout, stderr_file, peak_rss_file)
        finally:
            if process.returncode is None:
                process.kill()
                process.wait()


@contextlib.contextmanager
def piped_client(*args: str, input: bytes = b"", measure_memory: bool = False) -> Iterator[Client]:
    """A client reading ``input`` from a pipe, its stdin left open until the test ends."""
    with (
        tempfile.TemporaryFile() as stdout,
        started_client(
            list(args), subprocess.PIPE, stdout, measure_memory=measure_memory
        ) as client,
    ):
        assert client.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a client that already gave up
            client.process.stdin.write(input)
            client.process.stdin.flush()
        yield client
        with contextlib.suppress(BrokenPipeError):
            client.process.stdin.close()


def run_piped(*args: str, input: bytes, measure_memory: bool = False) -> Exited:
    """A client run to its end with ``input`` on stdin, then end of input."""
    with piped_client(*args, input=input, measure_memory=measure_memory) as client:
        assert client.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            client.process.stdin.close()
        return client.wait()


@contextlib.contextmanager
def terminal_client(*args: str, measure_memory: bool = False) -> Iterator[tuple[Client, int]]:
    """A client on a terminal (the prompt); yields it and the terminal's controller side.

    Its stderr is the terminal too: ``input()`` writes the prompt there.
    """
    controller, terminal = pty.openpty()
    try:
        with started_client(
            list(args), terminal, terminal, terminal, measure_memory=measure_memory
        ) as client:
            os.close(terminal)
            yield client, controller
    finally:
        os.close(controller)


def wait_for_prompt(controller: int) -> None:
    screen = b""
    while PROMPT not in screen:
        select.select([controller], [], [])
        screen += os.read(controller, 1024)


def wait_until_reading_stdin(pid: int) -> None:
    """Return once the process is blocked in read(0, ...) (Linux /proc)."""
    read = READ_SYSCALL.get(platform.machine())
    if read is None:
        pytest.skip("the read system call's number on this machine is unknown")
    while True:
        with open(f"/proc/{pid}/syscall") as syscall:
            number, *arguments = syscall.read().split()
        if number == read and arguments[0] == "0x0":
            return
        select.select([], [], [], 0.01)


def read_screen(controller: int) -> bytes:
    """All the terminal shows until the client has gone (the test's timeout bounds it)."""
    screen = b""
    with contextlib.suppress(OSError):  # EIO: nobody holds the terminal any more
        while chunk := os.read(controller, 1024):
            screen += chunk
    return screen


def assert_one_line_on_screen(exited: Exited, screen: bytes, message: str) -> None:
    """After the typed line, the terminal shows one line: the error."""
    assert exited.returncode == 1, screen
    shown = screen.decode(errors="replace").split("hello\r\n", 1)[1]
    assert shown.startswith("aioecho client: "), screen
    assert message in shown
    assert shown.endswith("\r\n"), screen
    assert shown.count("\n") == 1, screen


def assert_one_line_error(exited: Exited, message: str) -> None:
    assert exited.returncode == 1, exited.stderr
    lines = exited.stderr.decode().splitlines()
    assert len(lines) == 1, exited.stderr
    assert message in lines[0]
    assert lines[0].startswith("aioecho client: ")


@pytest.mark.parametrize("loop", LOOPS)
def test_an_endless_line_is_one_line_and_bounded_memory(loop: str) -> None:
    with rogue_server(endless_line) as rogue:
        args = ("--port", str(rogue.port), "--loop", loop)
        exited = run_piped(*args, input=b"hello\n", measure_memory=True)
        assert rogue.finished.wait(30)
    assert_one_line_error(exited, "reply longer than 65541 bytes (see --max-line and --max-reply)")
    assert exited.stdout == b""
    assert rogue.sent < ENDLESS_BOUNDED
    assert exited.peak_rss is not None
    assert exited.peak_rss < PEAK_RSS_BOUND


def test_the_bound_follows_max_line_and_suffix() -> None:
    body = b"x" * 70_000
    with serve_in_subprocess("--max-line", "70000", "--suffix", "~" * 20) as server:
        port = str(server.port)
        refused = run_piped("--port", port, input=body + b"\n")
        accepted = run_piped(
            "--port", port, "--max-line", "70000", "--suffix", "~" * 20, input=body + b"\n"
        )
        explicit = run_piped("--port", port, "--max-reply", str(70_021), input=body + b"\n")
        server.process.terminate()
    assert_one_line_error(refused, "reply longer than 65541 bytes")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == b"X" * 70_000 + b"~" * 20 + b"\n"
    assert explicit.returncode == 0, explicit.stderr


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reply_cut_short_is_exit_1(loop: str) -> None:
    with rogue_server(closes_mid_reply) as rogue:
        exited = run_piped("--port", str(rogue.port), "--loop", loop, input=b"hello\n")
    assert_one_line_error(exited, "the server closed the connection after 4 bytes of a reply")
    assert exited.stdout == b""


@pytest.mark.parametrize("loop", LOOPS)
def test_an_early_close_is_exit_1(loop: str) -> None:
    with rogue_server(closes_without_reply) as rogue:
        exited = run_piped("--port", str(rogue.port), "--loop", loop, input=b"one\ntwo\n")
    assert_one_line_error(exited, "the server closed the connection after 0 of 2 replies")


@pytest.mark.parametrize("loop", LOOPS)
def test_more_replies_than_lines_is_exit_1(loop: str) -> None:
    with rogue_server(streams_replies) as rogue:
        exited = run_piped("--port", str(rogue.port), "--loop", loop, input=b"one\ntwo\n")
    assert_one_line_error(exited, "the server sent more replies than lines were sent")


@pytest.mark.parametrize("loop", LOOPS)
def test_the_echo_of_an_err_line_is_a_reply(loop: str) -> None:
    with serve_in_subprocess() as server:
        lines = b"err not an error\nplain\n"
        exited = run_piped("--port", str(server.port), "--loop", loop, input=lines)
    assert exited.returncode == 0, exited.stderr
    assert exited.stdout == b"ERR NOT AN ERROR_SB\nPLAIN_SB\n"


def test_an_err_line_is_told_by_the_missing_suffix() -> None:
    with serve_in_subprocess("--max-line", "8") as server:
        lines = b"err line\nerr line too long\n"
        exited = run_piped("--port", str(server.port), input=lines)
    assert exited.returncode == 1
    assert exited.stdout == b"ERR LINE_SB\nERR line too long (max 8 bytes)\n"
    assert b"2 line(s) sent, 1 answered, 1 error(s)" in exited.stderr


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_that_never_answers_times_out(loop: str) -> None:
    with rogue_server(silent) as rogue:
        args = ("--port", str(rogue.port), "--loop", loop, "--timeout", "0.2")
        exited = run_piped(*args, input=b"hello\n")
    assert_one_line_error(exited, "no reply within 0.2 s")


def test_waiting_for_input_is_not_a_timeout() -> None:
    # Nothing is owed while the input is quiet, however long that lasts.
    with (
        serve_in_subprocess() as server,
        piped_client("--port", str(server.port), "--timeout", "0.5", input=b"one\n") as client,
    ):
        assert client.process.stdin is not None
        while not client.has_output():  # the reply to the first line: seen, not assumed
            select.select([], [], [], 0.05)
        select.select([], [], [], 1.0)  # quiet input for twice the timeout
        client.process.stdin.write(b"two\n")
        client.process.stdin.close()
        exited = client.wait()
        server.process.terminate()
    assert exited.returncode == 0, exited.stderr
    assert exited.stdout == b"ONE_SB\nTWO_SB\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_ctrl_c_while_waiting_for_a_reply_is_quiet(loop: str) -> None:
    with (
        rogue_server(silent) as rogue,
        piped_client("--port", str(rogue.port), "--loop", loop, input=b"hello\n") as client,
    ):
        assert rogue.received.wait(30)  # the client sent its line and waits
        client.process.send_signal(signal.SIGINT)
        exited = client.wait()
    assert exited.returncode == 130
    assert exited.stderr == b""


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_to_a_plain_aioecho_ends_within_the_connect_timeout(loop: str) -> None:
    with serve_in_subprocess() as server:
        args = ("--port", str(server.port), "--loop", loop, "--tls", "--connect-timeout", "0.2")
        exited = run_piped(*args, input=b"hello\n")
        server.process.terminate()
    assert_one_line_error(exited, "no TLS handshake within 0.2 s (is it a TLS server?)")


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_to_a_plain_text_server_fails_at_once(loop: str) -> None:
    with rogue_server(answers_in_plain_text) as rogue:
        args = ("--port", str(rogue.port), "--loop", loop, "--tls", "--connect-timeout", "0")
        exited = run_piped(*args, input=b"hello\n")
    assert_one_line_error(
        exited, "TLS failed: [SSL: WRONG_VERSION_NUMBER] wrong version number (is it a TLS server?)"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "http"], "argument --port: invalid int value: 'http'"),  # by the parser
        (["--port", "70000"], "port must be 1..65535, not 70000"),  # by a ClientConfig check
        (["--tls-ca", "/nonexistent/ca.pem"], "--tls-ca /nonexistent/ca.pem: No such file"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2_from_a_real_start(
    flags: list[str], message: str
) -> None:
    [line] = refusal_from_a_real_start("client", *flags)
    assert message in line


@pytest.mark.parametrize("loop", LOOPS)
def test_the_prompt_stops_an_endless_line_with_bounded_memory(loop: str) -> None:
    with rogue_server(endless_line) as rogue:
        exited, screen = converse(rogue, "--loop", loop, measure_memory=True)
        assert rogue.finished.wait(30)
    assert_one_line_on_screen(exited, screen, "reply longer than 65541 bytes")
    assert rogue.sent < ENDLESS_BOUNDED
    assert exited.peak_rss is not None
    assert exited.peak_rss < PEAK_RSS_BOUND


@pytest.mark.parametrize(
    ("behaviour", "flags", "message"),
    [
        (closes_mid_reply, [], "the server closed the connection after 4 bytes of a reply"),
        (closes_without_reply, [], "the server closed the connection before replying"),
        (silent, ["--timeout", "0.2"], "no reply within 0.2 s"),
    ],
)
def test_the_prompt_fails_in_one_line(behaviour: Behaviour, flags: list[str], message: str) -> None:
    with rogue_server(behaviour) as rogue:
        exited, screen = converse(rogue, *flags)
    assert_one_line_on_screen(exited, screen, message)


def converse(rogue: RogueServer, *args: str, measure_memory: bool = False) -> tuple[Exited, bytes]:
    """Type one line at the prompt of a client of ``rogue``; how the client ended."""
    port = str(rogue.port)
    with terminal_client("--port", port, *args, measure_memory=measure_memory) as (
        client,
        controller,
    ):
        wait_for_prompt(controller)
        os.write(controller, b"hello\n")
        screen = read_screen(controller)
        return client.wait(), screen


@pytest.mark.parametrize("waiting_for", ["input", "a reply"])
def test_ctrl_c_at_the_prompt_is_quiet(waiting_for: str) -> None:
    with (
        rogue_server(silent) as rogue,
        terminal_client("--port", str(rogue.port)) as (client, controller),
    ):
        wait_for_prompt(controller)
        if waiting_for == "a reply":
            os.write(controller, b"hello\n")
            assert rogue.received.wait(30)
        else:
            # The prompt is written just before the read: a signal between the
            # two would wait for the read, as it does for any program.
            wait_until_reading_stdin(client.process.pid)
        client.process.send_signal(signal.SIGINT)
        screen = read_screen(controller)
        exited = client.wait()
    assert exited.returncode == 130
    assert b"aioecho client" not in screen
    assert b"Traceback" not in screen


def test_a_closed_output_is_one_line_and_exit_1() -> None:
    lines = b"".join(b"line %d\n" % i for i in range(200_000))
    with serve_in_subprocess() as server, tempfile.TemporaryFile() as stdin:
        stdin.write(lines)
        stdin.seek(0)
        command = aioecho_command("client", "--port", str(server.port))
        client = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert client.stdout is not None
        assert client.stdout.readline() == b"LINE 0_SB\n"
        client.stdout.close()  # as `client | head -1` does
        _, stderr = client.communicate(timeout=30)
        server.process.terminate()
    assert client.returncode == 1
    assert stderr == b"aioecho client: the output was closed before every reply was written\n"
