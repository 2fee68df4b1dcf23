"""``serve`` flags set from ``AIOECHO_*`` variables, in real subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from .support import (
    ChildServer,
    aioecho_command,
    refusal_in_process,
    serve_in_subprocess,
    stop,
)


def talk(server: ChildServer, message: bytes) -> bytes:
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_variable_sets_its_flag(loop: str) -> None:
    with serve_in_subprocess("--loop", loop, env={"AIOECHO_MAX_LINE": "10"}) as server:
        assert talk(server, b"0123456789\n") == b"0123456789_SB\n"
        assert talk(server, b"0123456789x\n") == b"ERR line too long (max 10 bytes)\n"
        assert stop(server)[0] == 0


def test_the_flag_wins_over_its_variable() -> None:
    # Even over a value the server would refuse: the flag's is the one used.
    env = {"AIOECHO_SUFFIX": "!", "AIOECHO_MAX_LINE": "0"}
    with serve_in_subprocess("--suffix", "?", "--max-line", "1k", env=env) as server:
        assert talk(server, b"x\n") == b"X?\n"
        assert talk(server, b"y" * 1024 + b"\n") == b"Y" * 1024 + b"?\n"
        assert stop(server)[0] == 0


@pytest.mark.parametrize(("value", "reply"), [("yes", "STRASSE_SB"), ("off", "STRAßE_SB")])
def test_an_on_off_flag_takes_words(value: str, reply: str) -> None:
    with serve_in_subprocess(env={"AIOECHO_UNICODE": value}) as server:
        assert talk(server, "straße\n".encode()) == f"{reply}\n".encode()
        assert stop(server)[0] == 0


def test_a_repeatable_flag_takes_a_comma_separated_list() -> None:
    with serve_in_subprocess(env={"AIOECHO_HOST": "127.0.0.1, 127.0.0.2"}) as server:
        assert {host for host, _ in server.ready.addresses} == {"127.0.0.1", "127.0.0.2"}
        assert stop(server)[0] == 0


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("AIOECHO_MAX_LINE", "lots", "AIOECHO_MAX_LINE: not a byte count: 'lots'"),
        ("AIOECHO_MAX_LINE", "0", "AIOECHO_MAX_LINE: max_line must be 1..2**63-1 bytes, not 0"),
        ("AIOECHO_PORT", "http", "AIOECHO_PORT: invalid int value: 'http'"),
        ("AIOECHO_IDLE_TIMEOUT", "2y", "AIOECHO_IDLE_TIMEOUT: not a duration: '2y'"),
        ("AIOECHO_FRAMING", "words", "AIOECHO_FRAMING: invalid choice: 'words'"),
        ("AIOECHO_UNICODE", "maybe", "AIOECHO_UNICODE: not on or off: 'maybe'"),
        ("AIOECHO_READY_FD", "999", "AIOECHO_READY_FD 999: not an open descriptor"),
        ("AIOECHO_STATS_INTERVAL", "1ms", "AIOECHO_STATS_INTERVAL: stats_interval must be 0"),
    ],
)
def test_a_bad_value_names_its_variable_in_one_line_and_exit_2(
    variable: str,
    value: str,
    complaint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    [line] = refusal_in_process(capsys, "--port", "0")
    assert line.startswith(f"aioecho serve: error: {complaint}")


def test_a_bad_value_is_refused_so_when_really_started() -> None:
    # The refusals above run in this process; a real start shows the same.
    result = subprocess.run(
        aioecho_command("--port", "0"),
        env={**os.environ, "AIOECHO_MAX_LINE": "lots"},
        input=b"",
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("aioecho serve: error: AIOECHO_MAX_LINE: not a byte count: 'lots'")


def test_variables_of_no_flag_are_left_alone() -> None:
    # AIOECHO_NO_EXTENSIONS picks the build; it is no serve flag.
    env = {"AIOECHO_NO_SUCH_FLAG": "1", "AIOECHO_VERSION": "x", "AIOECHO_HELP": "x"}
    with serve_in_subprocess(env=env) as server:
        assert talk(server, b"x\n") == b"X_SB\n"
        assert stop(server)[0] == 0


def test_help_says_so() -> None:
    shown = subprocess.run(
        aioecho_command("serve", "--help"), capture_output=True, text=True, check=True
    ).stdout
    assert "AIOECHO_<FLAG>" in shown
    assert "AIOECHO_MAX_LINE" in shown
