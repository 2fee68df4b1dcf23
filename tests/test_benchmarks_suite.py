"""The benchmark suite in benchmarks/: its baselines speak the protocol, its
failures carry reasons, its report and plots come out of a result."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from time import monotonic_ns

import pytest

from benchmarks import cli
from benchmarks.core import cprograms
from benchmarks.core.load import Load
from benchmarks.core.servers import BACKLOG, ServerProcess, ServerSpec, running
from benchmarks.speed import contenders, tables
from benchmarks.suite import html, report
from benchmarks.suite.cli import CLAIMS_TITLE, output_dir, skip_reason
from benchmarks.suite.matrix import PRESETS
from benchmarks.suite.measure import Probe, choose_client, run_cell
from benchmarks.suite.model import Cell, Outcome, Run, Sample
from benchmarks.suite.servers import SERVERS

from .extras import needs

ROOT = Path(__file__).resolve().parents[1]

needs_plots = needs("report", "matplotlib")
needs_frameworks = needs("frameworks", "trio", "anyio", "gevent", "twisted")
BASELINES = [
    "streams", "selectors", "select", "poll", "epoll", "threads",
    *(pytest.param(name, marks=needs_frameworks)
      for name in ("trio", "anyio-asyncio", "anyio-trio", "gevent", "twisted")),
]  # fmt: skip
needs_c_compiler = pytest.mark.skipif(
    cprograms.build() is not None, reason=f"the C load client: {cprograms.build()}"
)


# Each test talks to it over connections of its own, so one server per name
# serves every test, and its clean exit is checked once after the last of them.
@pytest.fixture(scope="module", params=["aioecho-uvloop", *BASELINES])
def suite_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
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
def test_every_server_answers_the_protocol(
    suite_server: ServerProcess, chunks: tuple[bytes, ...], reply: bytes
) -> None:
    assert exchange(suite_server.port, *chunks, expect=len(reply)) == reply


def test_select_beyond_fd_setsize_is_a_failure_with_its_reason() -> None:
    matrix = PRESETS["smoke"]
    outcome = run_cell(Cell("select", Load(1100, 64, 1)), matrix)
    assert outcome.status == "failed"
    assert "filedescriptor out of range in select()" in outcome.reason


# Each repeat loads both cores for its duration. The harness needs 0.6 s, to
# report its progress (every 0.5 s) inside the measured window; the C client's
# own window and the probe's 20 ms samples need far less.
@pytest.mark.parametrize(
    ("client", "duration"),
    [pytest.param("c", 0.2, marks=needs_c_compiler), ("python", 0.6)],
    ids=["c", "python"],
)
def test_a_cell_that_passes_has_its_measurements(client: str, duration: float) -> None:
    matrix = dataclasses.replace(PRESETS["smoke"], client=client, duration=duration, warmup=0.1)
    outcome = run_cell(Cell("aioecho-uvloop", Load(10, 64, 2)), matrix)
    assert outcome.status == "ok", outcome.reason
    assert len(outcome.samples) == matrix.repeats
    for sample in outcome.samples:
        assert sample.rps > 0
        assert sample.errors == 0
        assert sample.cpu_us_per_rt is not None
        assert sample.cpu_us_per_rt > 0
        assert sample.latency_us["p99"] is not None
        assert sample.latency_us["p50"] <= sample.latency_us["p99"]
        assert sample.bench["pipeline"] == 2
    # The C client reports its own CPU; the harness's comes from its loop's thread.
    assert all(sample.client_cpu is not None for sample in outcome.samples) or client == "python"


def test_auto_takes_the_c_client_when_it_builds_and_says_why_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert choose_client("python")[0] == "python"
    cprograms.build.cache_clear()
    monkeypatch.setenv("CC", "/nonexistent/cc")
    try:
        client, note = choose_client("auto")
        assert client == "python"
        assert "no C compiler (/nonexistent/cc)" in note
        with pytest.raises(RuntimeError, match="cannot be built"):
            choose_client("c")
    finally:
        cprograms.build.cache_clear()


def sample(rps: float, cpu: float | None = 8.0, client: float | None = 0.5) -> Sample:
    latency = {"p50": 100.0, "p90": 200.0, "p99": 400.0, "p999": 800.0, "p9999": 900.0}
    return Sample(rps, latency, cpu, 2048.0, client, 0.1, 0, {"ok": True})


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


def ranked_run(*cells: tuple[str, tuple[Sample, ...]]) -> Run:
    load = Load(1000, 64, 1)
    outcomes = tuple(Outcome(Cell(name, load), "ok", "", samples) for name, samples in cells)
    return dataclasses.replace(synthetic_run(), outcomes=outcomes)


def fastest_row(run: Run) -> str:
    (row,) = [line for line in report.winners(run).splitlines() if line.startswith("| 1000")]
    return row


def test_a_server_is_named_fastest_only_when_the_ranges_do_not_overlap() -> None:
    apart = ranked_run(
        ("select", (sample(100e3), sample(104e3))),
        ("streams", (sample(80e3), sample(90e3))),
    )
    assert fastest_row(apart).startswith("| 1000 conns, 64 B, k=1 | select | 1.20x over streams |")
    overlapping = ranked_run(
        ("select", (sample(100e3), sample(104e3))),
        ("streams", (sample(80e3), sample(100e3))),
    )
    assert "| no clear winner: select, streams overlap |" in fastest_row(overlapping)


def test_client_bound_and_single_runs_are_flagged_and_never_ranked() -> None:
    run = ranked_run(
        ("select", (sample(150e3, client=0.95), sample(150e3))),
        ("threads", (sample(140e3),)),
        ("selectors", (sample(140e3, client=None), sample(140e3))),
        ("streams", (sample(80e3), sample(82e3))),
    )
    row = fastest_row(run)
    assert row.startswith("| 1000 conns, 64 B, k=1 | streams (alone) |")
    assert row.endswith(
        "| select (client-bound), threads (one repeat), selectors (client CPU unknown) |"
    )
    text = report.to_markdown(run)
    assert "| select | 150.0k † |" in text
    assert "| threads | 140.0k |" in text


def test_results_survive_a_json_round_trip() -> None:
    run = synthetic_run()
    assert report.from_json(report.to_json(run)) == run


@needs_plots
def test_plots_are_written_for_a_result(tmp_path: Path) -> None:
    from benchmarks.suite import plots

    written = plots.write_all(synthetic_run(), tmp_path / "run")
    assert [path.name for path in written] == [
        "run-rps.png",
        "run-p99.png",
        "run-latency.png",
        "run-memory.png",
    ]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)


@needs_plots
def test_rps_plot_starts_at_zero_and_keeps_failures_off_the_value_axes() -> None:
    from benchmarks.suite import plots

    figure = plots._figure(synthetic_run())
    plots._by_connections(figure, synthetic_run(), "rps", "round trips/s", 1.0)
    chart, strip = figure.axes[:2]
    assert chart.get_ylim()[0] == 0
    # select failed at 2000 connections: a cross in the strip, no point on the chart.
    assert [tick.get_text() for tick in strip.get_yticklabels()] == ["select"]
    (cross,) = strip.get_lines()
    assert list(cross.get_xdata()) == [2000]
    charted = [
        bars.lines[0].get_xdata() for bars in chart.containers if bars.get_label() == "select"
    ]
    assert [list(xs) for xs in charted] == [[10]]


def test_heavier_loads_are_skipped_after_a_failure_with_the_reason() -> None:
    failed = Outcome(Cell("select", Load(2000, 64, 1)), "failed", "FD_SETSIZE")
    heavier, lighter = Cell("select", Load(2000, 1024, 16)), Cell("select", Load(1000, 1024, 1))
    assert (
        skip_reason(heavier, [failed], None)
        == "already failed at 2000 conns, 64 B, k=1: FD_SETSIZE"
    )
    assert skip_reason(lighter, [failed], None) is None
    assert skip_reason(Cell("threads", Load(2000, 64, 1)), [failed], None) is None


def test_cpu_per_round_trip_counts_only_the_measured_window() -> None:
    probe = Probe.__new__(Probe)
    second = 1_000_000_000
    # The server: 1 CPU second per wall second; the client thread: half that.
    # 1000 round trips per second from t=2 s.
    probe.samples = [(t * second, float(t), 0, t / 2) for t in range(6)]
    probe.marks = [(2 * second, 0), (4 * second, 2000)]
    assert probe.cpu_us_per_rt(messages=3000, rps=1000.0) == pytest.approx(1000.0)
    assert probe.harness_cpu(messages=3000, rps=1000.0) == pytest.approx(0.5)
    probe.marks = [(2 * second, 0)]  # one report: the end follows from the rate
    assert probe.cpu_us_per_rt(messages=3000, rps=1000.0) == pytest.approx(1000.0)
    assert probe.harness_cpu(messages=3000, rps=1000.0) == pytest.approx(0.5)
    assert probe.cpu_us_between(1 * second, 3 * second, 500) == pytest.approx(4000.0)


def spin(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_the_harness_cpu_is_its_own_threads_alone() -> None:
    with running(SERVERS["select"]) as server, Probe(server) as probe:
        start = monotonic_ns()
        other = threading.Thread(target=spin, args=(0.3,))  # another thread of the process
        other.start()
        spin(0.3)  # the thread that made the probe, as the harness's loop would
        other.join()
        end = monotonic_ns()
        probe.marks = [(start, 0), (end, 100)]
    client = probe.harness_cpu(messages=100, rps=100.0)
    assert client is not None
    used = client * (end - start) / 1e9
    assert used == pytest.approx(0.3, abs=0.08)  # /proc counts 10 ms ticks; not 0.6


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of one smoke run of the suite."""
    out = tmp_path_factory.mktemp("smoke")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "matrix", "--smoke", "--servers", "aioecho-uvloop",
         "--duration", "0.1", "--warmup", "0.05", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@needs_plots
def test_smoke_run_writes_every_file(smoke_run: Path) -> None:
    names = sorted(path.suffix for path in smoke_run.iterdir())
    assert names == [".html", ".json", ".md", ".png", ".png", ".png", ".png"]
    (result,) = smoke_run.glob("*.json")
    assert json.loads(result.read_text())["cells"][0]["status"] == "ok"
    (page,) = smoke_run.glob("*.html")
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 4  # every plot inline
    assert 'src="http' not in text  # nothing to fetch
    assert 'href="http' not in text


@needs_plots
@pytest.mark.skipif(shutil.which("chromium") is None, reason="no browser on this machine")
def test_the_html_report_shows_its_charts_in_a_real_browser(
    smoke_run: Path, tmp_path: Path
) -> None:
    (page,) = smoke_run.glob("*.html")
    assert_renders_charts(page, tmp_path / "screenshot.png")


BROWSER = "chromium"
# matplotlib's first colour, the plots' lines and markers: nothing else on
# the page is this blue.
PLOT_BLUE = (0.12, 0.47, 0.71)


def assert_renders_charts(page: Path, screenshot: Path) -> None:
    """A real browser draws the page, and the screenshot shows the charts' blue."""
    import matplotlib.image

    subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400",
         f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = matplotlib.image.imread(screenshot)[:, :, :3]
    distance = abs(pixels - PLOT_BLUE).max(axis=2)
    assert (distance < 0.08).sum() > 200, "no chart drawn in the screenshot"


@needs_plots
@pytest.mark.skipif(shutil.which(BROWSER) is None, reason="no browser on this machine")
def test_a_page_without_its_plots_shows_no_chart(tmp_path: Path) -> None:
    page = tmp_path / "empty.html"
    page.write_text(html.to_html("# Nothing\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "x", tmp_path))
    with pytest.raises(AssertionError, match="no chart drawn"):
        assert_renders_charts(page, tmp_path / "screenshot.png")


def test_results_go_to_out_or_beside_the_remade_file_or_to_results() -> None:
    def out(*flags: str) -> Path:
        return output_dir(cli.parser().parse_args(["matrix", *flags]))

    assert out() == ROOT / "benchmarks" / "results"
    assert out("--out", "/tmp/x") == Path("/tmp/x")
    assert out("--from-json", "/data/run.json") == Path("/data")


def test_the_committed_claims_page_is_what_its_markdown_makes() -> None:
    results = ROOT / "benchmarks" / "results"
    markdown = (results / "20261206-044255Z-claims.md").read_text()
    page = (results / "20261206-044255Z-claims.html").read_text()
    assert html.to_html(markdown, CLAIMS_TITLE, results) == page


def listen_queue(port: int) -> int:
    """The listen queue length of the socket listening on ``port`` (``ss``'s Send-Q)."""
    shown = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(shown[2])


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_every_server_listens_with_the_same_backlog(suite_server: ServerProcess) -> None:
    assert listen_queue(suite_server.port) == min(BACKLOG, somaxconn())


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def minimal_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with running(contenders.minimal(request.param)) as server:
        yield server


@pytest.mark.parametrize(
    ("chunks", "reply"),
    [
        ((b"hello\n",), b"HELLO_SB\n"),
        ((b"spl", b"it li", b"ne\n"), b"SPLIT LINE_SB\n"),
        ((b"one\ntw", b"o\n"), b"ONE_SB\nTWO_SB\n"),
    ],
)
def test_minimal_protocol_answers_lf_lines_however_they_are_split(
    minimal_server: ServerProcess, chunks: tuple[bytes, ...], reply: bytes
) -> None:
    assert exchange(minimal_server.port, *chunks, expect=len(reply)) == reply


def test_speed_ratios_are_taken_within_each_round() -> None:
    c_server = contenders.C_SERVER

    def named(name: str, floor: str | None = None) -> contenders.Contender:
        return contenders.Contender(ServerSpec(name, name, ()), floor)

    chosen = [named(c_server), named("minimal uvloop"), named("aioecho", "minimal uvloop")]
    # The machine slows down between the rounds; the ratios within each stay 1.5x and 1.2x.
    runs: list[tables.Round] = [
        {c_server: sample(100e3, 8.0), "minimal uvloop": sample(100e3, 10.0),
         "aioecho": sample(80e3, 12.0)},
        {c_server: sample(50e3, 16.0), "minimal uvloop": sample(50e3, 20.0),
         "aioecho": sample(40e3, 24.0)},
        {c_server: sample(50e3, 16.0), "minimal uvloop": "server died",
         "aioecho": sample(40e3, 24.0)},
    ]  # fmt: skip
    rows = tables.table(Load(10, 64, 1), chosen, runs).splitlines()
    assert rows[0] == "### 10 connections, 64 B lines, 1 in flight"
    assert rows.pop() == "Other processes kept 0.1 cores busy."
    assert rows.pop() == ""
    assert rows[-1] == (
        "| aioecho | 24.0 (12.0-24.0) | 40.0k (40.0k-80.0k) | 0.50 "
        "| 1.50x | 1.20x | 0.80x | 0.80x |"
    )
    assert rows[-2].startswith("| minimal uvloop (1 failed: server died) | 15.0 (10.0-20.0) |")
