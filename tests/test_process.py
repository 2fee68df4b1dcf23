"""The process layer: one lifecycle, starts that roll back, readiness, signals, the metrics cap."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import platform
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import aioecho
from aioecho import EchoServer
from aioecho.metrics import METRICS_MAX_PER_ADDRESS
from aioecho.process import early
from aioecho.process.launch import LaunchError, launch_server
from aioecho.process.readiness import Readiness, ReadyReport
from aioecho.pytest_plugin import EchoClock
from aioecho.sockets.binding import BindError

from .support import aioecho_command, log_line, read_to_end, serve_in_subprocess, stop

PACKAGE = Path(aioecho.__file__).parent


# -- a failed start rolls back, and names what failed -------------------------


async def test_a_busy_metrics_port_fails_the_start_and_closes_the_echo_listener(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "echo.sock")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(BindError) as failed:
            await aioecho.start_server(unix=path, metrics_port=port)
    assert str(failed.value) == f"cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    assert not Path(path).exists()  # nothing listens there any more
    async with (
        await aioecho.start_server(unix=path),  # and the path is free again
        await aioecho.connect(unix=path) as client,
    ):
        assert await client.request("again") == b"AGAIN_SB"


async def test_a_busy_echo_port_names_the_echo_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(BindError) as failed:
            await aioecho.start_server(port=port, metrics_port=0)
    assert str(failed.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"


async def test_an_unusable_unix_path_names_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / ("x" * 200))  # longer than a Unix socket address holds
    with pytest.raises(BindError) as failed:
        await aioecho.start_server(unix=path)
    assert str(failed.value).startswith(f"cannot listen on unix:{path}: ")


def test_a_busy_metrics_port_on_the_command_line_is_one_line_naming_it() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            aioecho_command("--port", "0", "--metrics-port", str(port)),
            capture_output=True,
            timeout=30,
        )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.endswith(
        f"cannot serve metrics on 127.0.0.1:{port}: Address already in use".encode()
    )


# -- readiness ----------------------------------------------------------------


def test_the_ready_file_holds_what_the_ready_pipe_said(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    command = aioecho_command("--port", "0", "--metrics-port", "0", "--ready-file", str(ready_file))
    launched = launch_server(command, stderr=subprocess.DEVNULL)
    try:
        from_file = Readiness.from_json(ready_file.read_text())
        assert from_file == launched.ready
        assert from_file.pid == launched.process.pid
        assert from_file.addresses[0][0] == "127.0.0.1"
        assert from_file.metrics[0][0] == "127.0.0.1"
        with socket.create_connection(from_file.addresses[0], timeout=10) as sock:
            sock.sendall(b"ready\n")
            assert sock.recv(100) == b"READY_SB\n"
    finally:
        launched.process.terminate()
        assert launched.process.wait(timeout=20) == 0


def test_an_unwritable_ready_file_stops_the_service_with_exit_1(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    ready_file.mkdir()  # a directory where the file should go: the write fails
    command = aioecho_command("--port", "0", "--ready-file", str(ready_file))
    result = subprocess.run(command, capture_output=True, timeout=30)
    assert result.returncode == 1
    assert b"cannot announce that the service is ready" in result.stderr
    assert b"Traceback" not in result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["ready.json"]  # nothing left over


def test_a_server_that_fails_to_start_is_reported_with_its_exit_code() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        command = aioecho_command("--port", str(busy.getsockname()[1]))
        with pytest.raises(LaunchError) as failed:
            launch_server(command, stderr=subprocess.DEVNULL)
    # Its ready pipe closes as it exits: the launcher waits for the exit to say so.
    assert str(failed.value) == "the server exited with code 1 before it was ready"
    assert failed.value.process.returncode == 1


def a_readiness() -> Readiness:
    return Readiness(os.getpid(), (("127.0.0.1", 8088),), None, (), 1, "asyncio", "line", False)


def test_the_ready_file_is_never_written_through_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    ready_file = tmp_path / "ready.json"
    # Where the file used to be written first, and the first name the private file would take.
    (tmp_path / f"ready.json.{os.getpid()}.tmp").symlink_to(victim)
    (tmp_path / ".ready.json.planted.tmp").symlink_to(victim)
    (tmp_path / ".ready.json.reused.tmp").write_text("planted\n")
    names = iter(["planted", "reused", "mine"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    ready_file.symlink_to(victim)  # the name itself: replaced, not followed

    ReadyReport(file=str(ready_file)).publish(a_readiness())

    assert victim.read_text() == "precious\n"
    assert not ready_file.is_symlink()
    assert Readiness.from_json(ready_file.read_text()) == a_readiness()
    assert stat.S_IMODE(ready_file.stat().st_mode) == 0o600
    assert (tmp_path / ".ready.json.reused.tmp").read_text() == "planted\n"
    assert not (tmp_path / ".ready.json.mine.tmp").exists()  # renamed onto the ready file
    assert list(names) == []  # both planted names were tried, and passed over


def test_a_ready_file_that_cannot_be_written_leaves_no_private_file(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    ready_file.mkdir()  # the rename onto a directory fails
    with pytest.raises(IsADirectoryError):
        ReadyReport(file=str(ready_file)).publish(a_readiness())
    assert [path.name for path in tmp_path.iterdir()] == ["ready.json"]


# -- signals --------------------------------------------------------------------

RUN_SERVER_THEN_SIGNALS = """
import os, signal, sys, time
import aioecho
from aioecho.process.readiness import ReadyReport

def mine(signum, frame):
    print("my handler", signum, flush=True)

signal.signal(signal.SIGTERM, mine)
ready = ReadyReport(fd=int(sys.argv[-1]))
code = aioecho.run_server(aioecho.ServerConfig(port=0), loop=sys.argv[1], ready=ready)
print("run_server returned", code, flush=True)
os.kill(os.getpid(), signal.SIGTERM)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)  # interrupted at once if Ctrl-C works again
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


WORKERS_THAT_NEVER_REPORT = """
import sys, aioecho.process.spawn as spawn, aioecho.cli
spawn.command = lambda module: (sys.executable, "-c", "import time; time.sleep(60)")
sys.exit(aioecho.cli.main(["--workers", "2", "--port", "0"]))
"""


def test_a_signal_while_starting_stops_the_start_and_its_workers() -> None:
    starting = subprocess.Popen(
        [sys.executable, "-c", WORKERS_THAT_NEVER_REPORT], stderr=subprocess.PIPE
    )
    try:
        workers = Path(f"/proc/{starting.pid}/task/{starting.pid}/children")
        while len(workers.read_text().split()) < 2:  # the start is under way
            time.sleep(0.01)
        pids = [int(pid) for pid in workers.read_text().split()]
        starting.send_signal(signal.SIGTERM)
        _, log = starting.communicate(timeout=30)
    finally:
        if starting.poll() is None:
            starting.kill()
            starting.wait()
    assert starting.returncode == 0
    assert b"stopped before it was ready" in log
    assert b"serving on" not in log
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


# ``python -m aioecho ARGS``, paused when it first imports the module named first: an
# audit hook writes a line to the marker pipe and waits for a byte on the release pipe.
PAUSED_AT_AN_IMPORT = """
import os, runpy, sys
point, marker, release = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def pause(event, args):
    if event == "import" and args[0] == point:
        os.write(marker, b"paused\\n")
        os.read(release, 1)

sys.addaudithook(pause)
sys.argv = ["aioecho", *sys.argv[4:]]
runpy.run_module("aioecho", run_name="__main__", alter_sys=True)
"""


@contextlib.contextmanager
def paused_start(point: str, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``python -m aioecho ARGS`` paused at its import of ``point``; the process, the release."""
    marker_read, marker_write = os.pipe()
    release_read, release_write = os.pipe()
    command = [sys.executable, "-c", PAUSED_AT_AN_IMPORT, point]
    command += [str(marker_write), str(release_read), *args]
    process = subprocess.Popen(
        command, pass_fds=(marker_write, release_read), stderr=subprocess.PIPE
    )
    os.close(marker_write)
    os.close(release_read)
    try:
        with os.fdopen(marker_read, "rb") as marker:
            assert marker.readline() == b"paused\n", process.communicate()[1]
        yield process, release_write
    finally:
        os.close(release_write)
        if process.poll() is None:
            process.kill()
        process.communicate()


START_IMPORTS = [
    ("aioecho.cli", ()),  # the command line itself: argparse, the config, the server
    ("aioecho.process.runner", ()),
    ("aioecho.server", ()),
    ("aioecho.process.supervisor", ("--workers", "2")),
]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(("point", "flags"), START_IMPORTS)
def test_a_signal_while_the_program_imports_stops_it_with_exit_0(
    point: str, flags: tuple[str, ...], sig: signal.Signals
) -> None:
    with paused_start(point, "--port", "0", *flags) as (process, release):
        process.send_signal(sig)  # arrives while it is paused in the middle of its imports
        os.write(release, b"x")
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    assert b"Traceback" not in log
    assert b"stopped before it was ready" in log
    assert b"serving on" not in log


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("flags", [(), ("--workers", "2")])
def test_a_signal_at_any_time_of_the_start_is_exit_0_and_no_traceback(
    flags: tuple[str, ...], sig: signal.Signals, loop: str
) -> None:
    """Released from its first import of the command line, signalled 0 to 100 ms later."""
    for delay in (0.0, 0.01, 0.05, 0.1):
        args = ("--port", "0", "--loop", loop, *flags)
        with paused_start("aioecho.cli", *args) as (process, release):
            os.write(release, b"x")
            time.sleep(delay)  # where in the start the signal lands, not a wait for an event
            process.send_signal(sig)
            _, log = process.communicate(timeout=30)
        assert (delay, process.returncode) == (delay, 0), log
        assert b"Traceback" not in log, (delay, log)


def test_a_command_that_does_not_serve_gets_the_signals_back_and_one_that_came() -> None:
    heard: list[int] = []
    original = signal.signal(signal.SIGINT, lambda signum, _: heard.append(signum))
    try:
        early.catch_stop_signals()
        signal.raise_signal(signal.SIGINT)  # caught and remembered, not acted on
        assert heard == []
        early.release_stop_signals()
        assert heard == [signal.SIGINT]  # acted on once given back
        signal.raise_signal(signal.SIGINT)
        assert heard == [signal.SIGINT, signal.SIGINT]
        assert not early.take_stop_request()
    finally:
        signal.signal(signal.SIGINT, original)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_run_server_gives_back_the_signal_handlers_it_found(loop: str) -> None:
    command = [sys.executable, "-c", RUN_SERVER_THEN_SIGNALS, loop]
    launched = launch_server(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    launched.process.send_signal(signal.SIGTERM)
    output, _ = launched.process.communicate(timeout=30)
    assert output.splitlines() == [
        b"run_server returned 0",
        f"my handler {signal.SIGTERM.value}".encode(),
        b"interrupted",
    ]
    assert launched.process.returncode == 0


# -- the metrics endpoint's connection cap ---------------------------------------


async def test_metrics_hold_a_few_connections_and_refuse_the_rest() -> None:
    # A clock that stands still: no held connection reaches its request deadline.
    config = aioecho.ServerConfig(port=0, metrics_port=0)
    async with EchoServer(config, clock=EchoClock()) as server:
        address = server.metrics_addresses[0]
        extra = 5
        connections = [
            await asyncio.open_connection(*address) for _ in range(METRICS_MAX_PER_ADDRESS + extra)
        ]
        held, refused = connections[:METRICS_MAX_PER_ADDRESS], connections[-extra:]
        for reader, _ in refused:
            assert await read_to_end(reader) == b""  # closed without a word
        for reader, writer in held:  # still open: each gets its answer
            writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.0 200 OK\r\n")
        for _, writer in connections:
            writer.close()
        async with await aioecho.connect(*server.addresses[0]) as client:
            assert await client.request("echo unharmed") == b"ECHO UNHARMED_SB"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_metrics_out_of_descriptors_log_one_line_and_no_traceback(loop: str) -> None:
    # 48 descriptors: the echo clients take every one left, then scrapers come.
    flags = ("--loop", loop, "--max-connections", "1000", "--metrics-port", "0")
    with serve_in_subprocess(*flags, open_files=48) as server:
        echo = [socket.create_connection((server.host, server.port)) for _ in range(60)]
        log_line(server.process, b"cannot accept: Too many open files")
        scrapers = [socket.create_connection(server.ready.metrics[0]) for _ in range(20)]
        log_line(server.process, b"metrics: cannot accept: Too many open files")
        for sock in (*echo[1:], *scrapers):
            sock.close()
        echo[0].sendall(b"still served\n")
        assert echo[0].recv(100) == b"STILL SERVED_SB\n"
        echo[0].close()
        code, log = stop(server)
    assert code == 0
    assert b"Traceback" not in log
    assert b"metrics: cannot accept" not in log  # logged once, above


# -- the import graph --------------------------------------------------------------


def imports_of(path: Path) -> set[str]:
    """Every aioecho module ``path`` imports, at the top or inside a function."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if is_module(submodule) else base)
    return {name for name in found if name.split(".")[0] == "aioecho"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def test_the_package_imports_without_cycles_lazy_imports_included() -> None:
    graph = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
    assert "aioecho.process.supervisor" in graph["aioecho.process.runner"]  # the graph is read

    def cycle_from(start: str, path: list[str]) -> list[str] | None:
        for target in sorted(graph.get(path[-1], ())):
            if target == start:
                return [*path, target]
            if target not in path:
                found = cycle_from(start, [*path, target])
                if found:
                    return found
        return None

    for module in sorted(graph):
        assert cycle_from(module, [module]) is None, " -> ".join(cycle_from(module, [module]) or [])


# -- the allocator of a serving process ---------------------------------------

# A 1 MiB buffer mapped and freed, then a 256 KiB one held: does glibc put the
# held one on the heap, where what it frees stays resident?
HELD_ON_HEAP = """
import ctypes, sys
from aioecho.process.allocator import keep_large_buffers_mapped
if sys.argv[1] == "fixed":
    assert keep_large_buffers_mapped()
def on_heap(buffer):
    address = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            low, high = (int(end, 16) for end in line.split()[0].split("-"))
            return low <= address < high
    return False
freed = bytearray(1 << 20)
del freed
held = bytearray(256 * 1024)
print(on_heap(held))
"""


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)
@pytest.mark.parametrize(("threshold", "on_heap"), [("glibc's", "True"), ("fixed", "False")])
def test_a_serving_process_keeps_large_buffers_off_the_heap(threshold: str, on_heap: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", HELD_ON_HEAP, threshold], capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip() == on_heap
