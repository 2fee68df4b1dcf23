"""``python -m benchmarks abuse`` end to end in miniature, so that the scenarios cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli

ROOT = Path(__file__).resolve().parents[1]
LOOPS = ["asyncio", "uvloop"]


def abuse(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmarks", "abuse", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def slowloris(*args: str) -> dict[str, Any]:
    """Five slow clients and two normal ones, a tenth of a second of holding: the JSON document.

    The holding starts once every slow client is in, so its length is arbitrary.
    """
    done = abuse(
        "--scenario", "slowloris", "--json", "--duration", "0.1",
        "--slow-clients", "5", "--normal-clients", "2", *args,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    assert all(run["status"] == "ok" for run in document["runs"]), document["runs"]
    return document


def test_slow_clients_holding_every_slot_leave_normal_clients_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = slowloris("--max-connections", "5", "--loop", "both")
    runs = document["runs"]
    assert [run["loop"] for run in runs] == LOOPS
    for run in runs:
        assert run["server_flags"] == ["--max-connections", "5"]
        figures = run["figures"]
        assert figures["slow_holding"] == 5
        assert figures["served"] == 0
        assert sum(figures["refused"].values()) == 2
        assert all(reason.startswith("ERR ") for reason in figures["refused"]), figures
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(document))
    # Remade in this process: the tables come from the document alone.
    assert cli.main(["abuse", "--from-json", str(saved)]) == 0
    assert "| asyncio | 5 | 5 | held to the end: 5 | 2 | 0 | ERR " in capsys.readouterr().out


def test_with_room_left_normal_clients_are_served_and_the_table_says_so() -> None:
    done = abuse(
        "--scenario", "slowloris", "--duration", "0.1",
        "--slow-clients", "1", "--normal-clients", "2", "--max-connections", "20",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "## slowloris" in done.stdout
    for loop in LOOPS:
        assert f"| {loop} | 1 | 1 | held to the end: 1 | 2 | 2 | none |" in done.stdout


def test_scrapes_succeed_while_one_address_opens_metrics_connections() -> None:
    done = abuse("--scenario", "scrapes", "--json", "--duration", "0.5", "--loop", "uvloop")
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    figures = run["figures"]
    assert run["server_flags"] == ["--metrics-port", "0"]
    assert figures["scrapes"] >= 1
    assert figures["scraped"] == figures["scrapes"], figures
    # Its share of the 8 slots; a connection the server is refusing at the
    # instant of the count may show as held too.
    assert 4 <= figures["blinder_holding"] <= 5, figures
    assert figures["refused"]["max_connections_per_ip"] > 0
