"""``python -m benchmarks``: one command line for every benchmark, refusing bad flags alike."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import cli
from benchmarks.suite.claims import CLAIMS

from .support import refusal_from_a_real_start, refusal_in_process

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["matrix", "--sizes", "big"], "matrix: error: argument --sizes"),
        (["matrix", "--servers", "nginx"], "matrix: error: argument --servers"),
        (["matrix", "--repeats", "1"], "matrix: error: argument --repeats"),
        (["matrix", "--client", "rust"], "matrix: error: argument --client"),
        (["matrix", "--quick", "--smoke"], "not allowed with"),
        (["speed", "--repeats", "1"], "speed: error: argument --repeats"),
        (["abuse", "--scenario", "nope"], "abuse: error: argument --scenario"),
        (["abuse", "--duration", "0"], "abuse: error: argument --duration"),
        (["abuse", "--server-args", "'unclosed"], "abuse: error: argument --server-args"),
        (["abuse", "--holders", "x"], "abuse: error: argument --holders"),
        (["abuse", "--from-json", "/no/such/run.json"], "abuse: error: cannot read"),
        (["nope"], "invalid choice: 'nope'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_flags_are_one_line_and_status_2(
    flags: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = refusal_in_process(capsys, *flags, main=cli.main)
    assert line.startswith("python -m benchmarks")
    assert complaint in line


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_each_command_refuses_so_when_really_started(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusals above are the parser's: a real start of each shows it exits so.
    monkeypatch.chdir(ROOT)  # where python -m finds the package
    program = (sys.executable, "-m", "benchmarks", command)
    [line] = refusal_from_a_real_start("--duration", "0", program=program)
    assert line.startswith(f"python -m benchmarks {command}: error: argument --duration")


def test_the_help_lists_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert all(f"    {command} " in shown for command in cli.COMMANDS)


def test_claims_is_the_matrix_measuring_every_claim_or_those_named() -> None:
    every = cli.parser().parse_args(["claims"])
    assert every.main is cli.COMMANDS["matrix"].main
    assert every.claims == tuple(CLAIMS)
    assert cli.parser().parse_args(["claims", "--claims", "one_thread"]).claims == ("one_thread",)
