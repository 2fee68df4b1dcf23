"""The command line, in real subprocesses talking over real sockets."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import aioecho
from aioecho import ServerConfig
from aioecho.cli import build_parser, parsers
from aioecho.cli.parsing import from_flags

from .support import (
    ChildServer,
    aioecho_command,
    log_line,
    never_reading_peer,
    refusal_from_a_real_start,
    refusal_in_process,
    serve_in_subprocess,
    stop,
)

LOOPS = ["asyncio", "uvloop"]


def talk(server: ChildServer, message: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


@pytest.fixture
def no_uvloop(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import uvloop`` fails, as on a machine without it."""
    package = tmp_path / "uvloop"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('uvloop is not installed')\n")
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_talk_and_stop_on_signal(loop: str, sig: signal.Signals) -> None:
    with serve_in_subprocess("--loop", loop) as server:
        assert (server.ready.loop, server.ready.framing, server.ready.workers) == (loop, "line", 1)
        assert talk(server, b"hello\nworld\r\n") == b"HELLO_SB\nWORLD_SB\r\n"
        code, log = stop(server, sig)
    assert code == 0
    assert b"Traceback" not in log


@pytest.mark.parametrize("loop", LOOPS)
def test_flags_work_with_the_serve_word_too(loop: str) -> None:
    flags = ("--loop", loop, "--framing", "chunk", "--suffix", "!")
    with serve_in_subprocess("serve", *flags) as server:
        assert server.ready.framing == "chunk"
        assert talk(server, b"abc") == b"ABC!"
        assert stop(server)[0] == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_second_signal_forces_the_stop(loop: str) -> None:
    with serve_in_subprocess("--loop", loop, "--shutdown-timeout", "3600") as server:
        # A peer that never reads keeps the graceful stop waiting for it.
        hog = never_reading_peer((server.host, server.port))
        server.process.send_signal(signal.SIGTERM)
        log_line(server.process, b"shutting down")  # the first signal: a graceful stop
        code, _ = stop(server)
        hog.close()
    assert code == 0


def test_console_script_serves() -> None:
    script = Path(sys.executable).with_name("aioecho")
    with serve_in_subprocess(env={"PATH": f"{script.parent}:{os.environ['PATH']}"}) as server:
        assert talk(server, b"x\n") == b"X_SB\n"
        stop(server)
    result = subprocess.run([script, "--version"], capture_output=True, check=True)
    assert result.stdout.startswith(b"aioecho ")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--port", "x"], "--port"),  # refused by the parser
        (["--max-line", "0"], "max_line"),  # by a ServerConfig check
        (["--ready-fd", "999"], "--ready-fd 999: not an open descriptor"),  # by the system
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2_from_a_real_start(
    args: list[str], complaint: str
) -> None:
    [line] = refusal_from_a_real_start(*args)
    assert complaint in line


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--port", "x"], "--port"),
        (["--port", "70000"], "port"),
        (["--framing", "words"], "--framing"),
        (["--max-line", "0"], "max_line"),
        (["--max-client-memory", "lots"], "--max-client-memory"),
        (["--sndbuf", "lots"], "--sndbuf"),
        (["--sndbuf", "2G"], "sndbuf must be 0..2147483647 bytes, not 2G"),
        (["--line-timeout", "-1"], "--line-timeout: not a duration: '-1'"),
        (["--max-connections-per-ip", "-2"], "max_connections_per_ip"),
        (["--loop", "trio"], "--loop"),
        (["--no-such-flag"], "--no-such-flag"),
        (["serve", "extra"], "extra"),
        (["--backlog", "99999999999"], "backlog must be 1..2147483647"),
        (["--idle-timeout", "inf"], "--idle-timeout: not a duration: 'inf'"),
        (["--idle-timeout", "2y"], "--idle-timeout: not a duration: '2y'"),
        (["--write-timeout", "nan"], "--write-timeout: not a duration: 'nan'"),
        (["--unix", ""], "unix must be a file path"),
        (["--tls-handshake-timeout", "0"], "tls_handshake_timeout must be above 0"),
        (["--stats-interval", "1ms"], "stats_interval must be 0 (off) or at least 0.1"),
        (["--worker-timeout", "0.5"], "worker_timeout must be at least 1"),
        (["--ready-fd", "999"], "--ready-fd 999: not an open descriptor"),
        (["--ready-fd", "-1"], "--ready-fd -1: not an open descriptor"),
        (["--ready-file", "/no/such/dir/ready"], "--ready-file /no/such/dir/ready: no such"),
        # faults
        (["--delay", "1ms:60,2ms:50"], "more than 100"),
        (["--bandwidth", "fast"], "not a byte count"),
        (["--drop", "2"], "drop"),
        (["--reset", "often"], "--reset"),
        (["--jitter", "soon"], "--jitter: not a duration"),
        (["--fragment", "x"], "--fragment"),
        (["--framing", "chunk", "--stall-after", "1"], "line framing"),
        # the client command
        (["client", "--port", "70000"], "port must be 1..65535, not 70000"),
        (["client", "--port", "0"], "port must be 1..65535, not 0"),
        (["client", "--port", "http"], "argument --port: invalid int value: 'http'"),
        (["client", "--timeout", "-1"], "argument --timeout: not a duration: '-1'"),
        (["client", "--timeout", "nan"], "argument --timeout: not a duration: 'nan'"),
        (["client", "--timeout", "2y"], "argument --timeout: not a duration: '2y'"),
        (
            ["client", "--connect-timeout", "inf"],
            "argument --connect-timeout: not a duration: 'inf'",
        ),
        (
            ["client", "--connect-timeout", "400d"],
            "argument --connect-timeout: not a duration: '400d'",
        ),
        (["client", "--max-line", "0"], "max_line must be 1..2**63-1 bytes, not 0"),
        (["client", "--max-reply", "1"], "max_reply must be 2..2**63-1 bytes, not 1"),
        (["client", "--max-reply", "9" * 400], "argument --max-reply: byte count '999"),
        (["client", "--max-reply", "lots"], "argument --max-reply: not a byte count: 'lots'"),
        (["client", "--unix", "/tmp/echo.sock", "--tls"], "TLS over --unix needs --tls-insecure"),
        (
            ["client", "--tls-ca", "/nonexistent/ca.pem"],
            "--tls-ca /nonexistent/ca.pem: No such file",
        ),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = refusal_in_process(capsys, *args)
    assert complaint in line


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"backlog": 2**31}, "backlog must be 1..2147483647"),
        ({"idle_timeout": float("inf")}, "idle_timeout must be 0..31536000 seconds, not inf"),
        ({"shutdown_timeout": -1.0}, "shutdown_timeout must be 0..31536000 seconds"),
        ({"sndbuf": -1}, "sndbuf must be 0..2147483647 bytes, not -1"),
        ({"unix": "\0abstract"}, "unix must be a file path"),
        ({"tls_handshake_timeout": 0.0}, "tls_handshake_timeout must be above 0"),
        ({"stats_interval": 0.05}, "stats_interval must be 0 (off) or at least 0.1"),
    ],
)
def test_the_library_refuses_the_same_values(options: dict[str, object], complaint: str) -> None:
    with pytest.raises(aioecho.ConfigError) as refused:
        aioecho.ServerConfig(**options)  # type: ignore[arg-type]
    assert str(refused.value).startswith(complaint)


def test_explicit_uvloop_without_uvloop_exits_2(no_uvloop: dict[str, str]) -> None:
    env = {**os.environ, **no_uvloop}
    result = subprocess.run(
        aioecho_command("--loop", "uvloop"), capture_output=True, env=env, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        b"aioecho serve: error: the uvloop event loop needs the uvloop extra "
        b"(uvloop is not installed): pip install 'aioecho[uvloop]'"
    ]


def test_auto_loop_falls_back_to_asyncio_without_uvloop(no_uvloop: dict[str, str]) -> None:
    with serve_in_subprocess(env=no_uvloop) as server:
        assert server.ready.loop == "asyncio"
        assert talk(server, b"ok\n") == b"OK_SB\n"
        assert stop(server)[0] == 0


def test_a_port_in_use_is_a_one_line_error() -> None:
    with serve_in_subprocess() as server:
        result = subprocess.run(
            aioecho_command("--port", str(server.port)), capture_output=True, timeout=30
        )
        stop(server)
    assert result.returncode == 1
    assert b"cannot listen on 127.0.0.1:" in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("loop", LOOPS)
def test_client_in_a_pipe_prints_every_reply(loop: str) -> None:
    lines = b"".join(b"line %d\n" % i for i in range(5000)) + b"tail"
    with serve_in_subprocess("--loop", loop) as server:
        result = subprocess.run(
            aioecho_command("client", "--port", str(server.port)),
            input=lines,
            capture_output=True,
            timeout=60,
        )
        stop(server)
    assert result.returncode == 0, result.stderr
    expected = b"".join(b"LINE %d_SB\n" % i for i in range(5000)) + b"TAIL_SB"
    assert result.stdout == expected


def test_client_in_a_pipe_fails_on_an_error_reply() -> None:
    with serve_in_subprocess("--max-line", "4") as server:
        result = subprocess.run(
            aioecho_command("client", "--port", str(server.port)),
            input=b"ok\ntoo long\nnever\n",
            capture_output=True,
            timeout=30,
        )
        stop(server)
    assert result.returncode == 1
    assert result.stdout == b"OK_SB\nERR line too long (max 4 bytes)\n"
    assert result.stderr == b"aioecho client: 3 line(s) sent, 1 answered, 1 error(s)\n"


def test_client_without_a_server_is_a_one_line_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]  # bound, not listening: connections are refused
        result = subprocess.run(
            aioecho_command("client", "--port", str(free_port)),
            input=b"x\n",
            capture_output=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"aioecho client: 127.0.0.1:{free_port}: Connection refused".encode()
    ]


def test_client_on_a_terminal_is_the_tutorial_prompt() -> None:
    with serve_in_subprocess() as server:
        controller, terminal = pty.openpty()
        client = subprocess.Popen(
            aioecho_command("client", "--port", str(server.port)),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
        )
        os.close(terminal)
        screen = read_until(controller, b"", prompts=1)
        os.write(controller, b"\nhello\n")  # the empty line is skipped: a second prompt
        screen = read_until(controller, screen, prompts=3)
        os.write(controller, b"\x04")  # end of input: leave quietly
        assert client.wait(timeout=20) == 0
        os.close(controller)
        stop(server)
    # The terminal echoes typed input whenever it arrives; the replies and
    # prompts are what the client wrote.
    assert screen.endswith(b"HELLO_SB\r\n>>: ")
    assert screen.count(b"HELLO_SB") == 1


def read_until(fd: int, screen: bytes, prompts: int) -> bytes:
    """Read a terminal until it shows ``prompts`` prompts (the test's timeout bounds it)."""
    while screen.count(b">>: ") < prompts:
        select.select([fd], [], [])
        screen += os.read(fd, 1024)
    return screen


def test_times_take_units_on_every_command() -> None:
    serve = build_parser().parse_args(["serve", "--idle-timeout", "5m", "--write-timeout", "250ms"])
    config = from_flags(ServerConfig, serve)
    assert (config.idle_timeout, config.write_timeout) == (300.0, 0.25)
    bench = build_parser().parse_args(
        ["bench", "--duration", "1s", "--warmup", "500ms", "--find-max-rate", "5ms"]
    )
    assert (bench.duration, bench.warmup, bench.find_max_rate) == (1.0, 0.5, 0.005)


def test_a_repeatable_flag_shows_its_real_default() -> None:
    shown = subprocess.run(
        aioecho_command("serve", "--help"), capture_output=True, text=True, timeout=30
    ).stdout
    assert "(default: 127.0.0.1)" in " ".join(shown.split())
    assert "(default: None)" not in shown


def test_sizes_take_units_on_every_command() -> None:
    serve = build_parser().parse_args(["serve", "--max-line", "1KiB", "--sndbuf", "64k"])
    config = from_flags(ServerConfig, serve)
    assert (config.max_line, config.sndbuf) == (1024, 65536)
    client = build_parser().parse_args(["client", "--max-reply", "1M", "--timeout", "150ms"])
    assert (client.max_reply, client.timeout) == (1024 * 1024, 0.15)
    bench = build_parser().parse_args(["bench", "--size", "2k", "--rate", "10:20:1m"])
    assert (bench.size, bench.rate) == (2048, (10.0, 20.0, 60.0))


def test_parsers_are_the_commands_in_order() -> None:
    built = parsers()
    assert list(built) == ["serve", "client", "bench"]
    assert [parser.prog for parser in built.values()] == [
        "aioecho serve",
        "aioecho client",
        "aioecho bench",
    ]


@pytest.mark.parametrize("command", ["serve", "client", "bench"])
def test_help_is_what_the_parser_says(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the width argparse wraps to
    shown = subprocess.run(
        aioecho_command(command, "--help"),
        env={**os.environ, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == parsers()[command].format_help()
    assert "\nexamples:\n" in shown


@pytest.mark.parametrize("command", ["serve", "client", "bench"])
def test_every_flag_is_in_a_named_group(command: str) -> None:
    parser = parsers()[command]
    [ungrouped] = [group for group in parser._action_groups if group.title == "options"]
    assert [action.dest for action in ungrouped._group_actions] == ["help"]
    ours = ("options", "positional arguments")  # argparse's own groups
    grouped = [group for group in parser._action_groups if group.title not in ours]
    assert len(grouped) >= 3
    assert all(group._group_actions for group in grouped)


@pytest.mark.parametrize("command", ["serve", "client", "bench"])
def test_every_default_shown_is_the_default(command: str) -> None:
    """What ``(default: X)`` says, typed back as the flag, is the value the flag has unset."""
    parser = parsers()[command]
    checked = 0
    for action in parser._actions:
        shown = re.search(r"\(default: ([^)]*)\)$", action.help or "")
        if shown is None or not action.option_strings:
            continue
        assert "None" not in shown.group(1)
        flag = action.option_strings[-1]
        written = parser.parse_args([flag, shown.group(1).replace("%%", "%")])
        unset = parser.parse_args([])
        if unset.__dict__[action.dest] is None:  # a repeatable flag: its config says
            assert from_flags(ServerConfig, written).hosts == ServerConfig().hosts
        else:
            assert written.__dict__[action.dest] == unset.__dict__[action.dest], flag
        checked += 1
    assert checked >= 5
