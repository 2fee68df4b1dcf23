"""The benchmark suite in benchmarks/: its baselines speak the protocol, its
failures carry reasons, its report and plots come out of a result."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from suite import cli, report  # noqa: E402
from suite.matrix import PRESETS  # noqa: E402
from suite.measure import Probe, run_cell  # noqa: E402
from suite.model import Cell, Load, Outcome, Run, Sample  # noqa: E402
from suite.servers import BACKLOG, SERVERS, ServerProcess, running  # noqa: E402

BASELINES = ["streams", "selectors", "select", "threads"]


@pytest.fixture(params=BASELINES)
def baseline(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with running(SERVERS[request.param]) as server:
        yield server
        server.stop()
        assert server.process.returncode == 0, server.last_line()  # SIGTERM is a clean exit


def exchange(port: int, *chunks: bytes, expect: int) -> bytes:
    """Send ``chunks`` as separate writes; read until ``expect`` bytes came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.02)  # let each chunk arrive alone
        received = b""
        while len(received) < expect and (data := sock.recv(4096)):
            received += data
        return received


@pytest.mark.parametrize(
    ("chunks", "reply"),
    [
        ((b"hello\n",), b"HELLO_SB\n"),
        ((b"a\r\n",), b"A_SB\r\n"),
        ((b"spl", b"it li", b"ne\n"), b"SPLIT LINE_SB\n"),
        ((b"one\ntwo\r\nthr", b"ee\n"), b"ONE_SB\nTWO_SB\r\nTHREE_SB\n"),
        ((b"\n",), b"_SB\n"),
    ],
)
def test_baseline_answers_the_protocol(
    baseline: ServerProcess, chunks: tuple[bytes, ...], reply: bytes
) -> None:
    assert exchange(baseline.port, *chunks, expect=len(reply)) == reply


def test_select_beyond_fd_setsize_is_a_failure_with_its_reason() -> None:
    matrix = PRESETS["smoke"]
    outcome = run_cell(Cell("select", Load(1100, 64, 1)), matrix)
    assert outcome.status == "failed"
    assert "filedescriptor out of range in select()" in outcome.reason


def test_a_cell_that_passes_has_its_measurements() -> None:
    outcome = run_cell(Cell("aioecho-uvloop", Load(10, 64, 2)), PRESETS["smoke"])
    assert outcome.status == "ok", outcome.reason
    (sample,) = outcome.samples
    assert sample.rps > 0
    assert sample.errors == 0
    assert sample.cpu_us_per_rt is not None
    assert sample.cpu_us_per_rt > 0
    assert sample.bench["pipeline"] == 2


def sample(rps: float, cpu: float | None = 8.0) -> Sample:
    latency = {"p50": 100.0, "p90": 200.0, "p99": 400.0, "p999": 800.0, "p9999": 900.0}
    return Sample(rps, latency, cpu, 2048.0, 0.5, 0.1, 0, {"ok": True})


def synthetic_run() -> Run:
    small, large = Load(10, 64, 1), Load(2000, 64, 1)
    outcomes = (
        Outcome(Cell("aioecho-uvloop", small), "ok", "", (sample(90e3), sample(100e3))),
        Outcome(Cell("aioecho-asyncio", small), "ok", "", (sample(50e3),)),
        Outcome(Cell("select", small), "ok", "", (sample(40e3, None),)),
        Outcome(Cell("aioecho-uvloop", large), "ok", "", (sample(60e3),)),
        Outcome(Cell("aioecho-asyncio", large), "ok", "", (sample(30e3),)),
        Outcome(Cell("select", large), "failed", "server died (exit status 1): ValueError"),
    )
    machine = {"cpu": "Test CPU", "cores": 2, "memory_gib": 1.0, "kernel": "6.0"}
    machine |= {"python": "3.11", "uvloop": "0.21", "aioecho": "0", "commit": "abc"}
    settings = {"preset": "test", "repeats": 2, "duration": 1.0, "warmup": 0.5}
    return Run(machine, settings, "2025-01-01T00:00:00+00:00", 60.0, outcomes)


def test_report_tables_show_medians_ratios_and_failures() -> None:
    text = report.to_markdown(synthetic_run())
    assert "| aioecho-uvloop | 95.0k (90.0k-100.0k) | 60.0k |" in text
    assert "| 2000 conns, 64 B, k=1 | 60.0k | n/a | n/a | 2.00x | n/a |" in text  # uvloop ÷ stdlib
    assert "| 10 conns, 64 B, k=1 | 95.0k | select 40.0k | 2.38x |" in text
    assert "| select | 2000 conns, 64 B, k=1 | failed | server died" in text
    assert "Test CPU, 2 cores" in text


def test_results_survive_a_json_round_trip() -> None:
    run = synthetic_run()
    assert report.from_json(report.to_json(run)) == run


def test_plots_are_written_for_a_result(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from suite import plots

    written = plots.write_all(synthetic_run(), tmp_path / "run")
    assert [path.name for path in written] == [
        "run-rps.png",
        "run-p99.png",
        "run-latency.png",
        "run-memory.png",
    ]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)


def test_heavier_loads_are_skipped_after_a_failure_with_the_reason() -> None:
    failed = Outcome(Cell("select", Load(2000, 64, 1)), "failed", "FD_SETSIZE")
    heavier, lighter = Cell("select", Load(2000, 1024, 16)), Cell("select", Load(1000, 1024, 1))
    assert (
        cli.skip_reason(heavier, [failed], None)
        == "already failed at 2000 conns, 64 B, k=1: FD_SETSIZE"
    )
    assert cli.skip_reason(lighter, [failed], None) is None
    assert cli.skip_reason(Cell("threads", Load(2000, 64, 1)), [failed], None) is None


def test_cpu_per_round_trip_counts_only_the_measured_window() -> None:
    probe = Probe.__new__(Probe)
    second = 1_000_000_000
    # 1 CPU second per wall second; 1000 round trips per second from t=2 s.
    probe.samples = [(t * second, float(t), 0) for t in range(6)]
    probe.marks = [(2 * second, 0), (4 * second, 2000)]
    assert probe.cpu_us_per_rt(messages=3000, rps=1000.0) == pytest.approx(1000.0)
    probe.marks = [(2 * second, 0)]  # one report: the end follows from the rate
    assert probe.cpu_us_per_rt(messages=3000, rps=1000.0) == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "flags",
    [["--sizes", "big"], ["--servers", "nginx"], ["--repeats", "0"], ["--quick", "--smoke"]],
)
def test_bad_flags_are_one_line_and_status_2(flags: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), *flags], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_smoke_run_writes_every_file(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--smoke", "--servers", "aioecho-uvloop",
         "--out", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = sorted(path.suffix for path in tmp_path.iterdir())
    assert names == [".json", ".md", ".png", ".png", ".png", ".png"]
    (result,) = tmp_path.glob("*.json")
    assert json.loads(result.read_text())["cells"][0]["status"] == "ok"


def test_results_go_to_out_or_beside_the_remade_file_or_to_results() -> None:
    def out(*flags: str) -> Path:
        return cli.output_dir(cli.parser().parse_args(list(flags)))

    assert out() == BENCHMARKS / "results"
    assert out("--out", "/tmp/x") == Path("/tmp/x")
    assert out("--from-json", "/data/run.json") == Path("/data")


def listen_queue(port: int) -> int:
    """The listen queue length of the socket listening on ``port`` (``ss``'s Send-Q)."""
    shown = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(shown[2])


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("name", ["aioecho-uvloop", *BASELINES])
def test_every_server_listens_with_the_same_backlog(name: str) -> None:
    with running(SERVERS[name]) as server:
        assert listen_queue(server.port) == min(BACKLOG, somaxconn())


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())
