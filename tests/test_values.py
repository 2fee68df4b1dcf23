"""Odd values, refused alike in one line by every entry point.

The same table runs through ``ServerConfig``, ``set_faults()`` on a running
server and the command line (in process, and a few in a real child
process); the pytest marker's refusals are in test_pytest_plugin.
"""

from __future__ import annotations

from typing import Any

import pytest

import aioecho
from aioecho import ConfigError, EchoServer, ServerConfig
from aioecho.config import FAULT_FIELDS, MAX_WORKERS

from .support import refusal_from_a_real_start, refusal_in_process

DIGITS_400 = "1" * 400
HUGE = int(DIGITS_400)
YEAR = "0..31536000 seconds"
ANY_BYTES = "0..2**63-1 bytes"
ANY_COUNT = "0..2**63-1"

# (option, value, what the one line says): values from the library.
LIBRARY_CASES: list[tuple[str, Any, str]] = [
    ("delay", DIGITS_400, f"must be {YEAR}"),
    ("delay", f"{DIGITS_400}:10", f"must be {YEAR}"),
    ("delay", "1ms:nan", "a percentage must be 0..100, not nan"),
    ("delay", 5, "delay must be text such as '50ms' or '150us:10,2ms:5', not 5"),
    ("jitter", DIGITS_400, f"must be {YEAR}"),
    ("jitter", float("inf"), f"jitter must be {YEAR}, not inf"),
    ("jitter", [1], f"jitter must be a number {YEAR}, not [1]"),
    ("bandwidth", DIGITS_400, f"must be {ANY_BYTES}, not a number of about 400 digits"),
    ("bandwidth", HUGE, f"bandwidth must be {ANY_BYTES}, not a number of about 400 digits"),
    ("bandwidth", 0.5, f"bandwidth must be a whole number {ANY_BYTES}, not 0.5"),
    ("close_after", 2**63, f"close_after must be {ANY_BYTES}"),
    ("drop", "0.5", "drop must be a number 0..1, not '0.5'"),
    ("drop", float("nan"), "drop must be 0..1, not nan"),
    ("reset", True, "reset must be a number 0..1, not True"),
    ("fragment", 0.5, f"fragment must be a whole number {ANY_COUNT}, not 0.5"),
    ("stall_after", 0.5, f"stall_after must be a whole number {ANY_COUNT}, not 0.5"),
    ("stall_after", -1, f"stall_after must be {ANY_COUNT}, not -1"),
    ("seed", 0.5, "seed must be a whole number"),
    ("seed", HUGE, "seed must be"),
    ("workers", MAX_WORKERS + 1, f"workers must be 1..{MAX_WORKERS}, not {MAX_WORKERS + 1}"),
    ("workers", HUGE, f"workers must be 1..{MAX_WORKERS}, not a number of about 400 digits"),
    ("port", True, "port must be a whole number 0..65535, not True"),
    ("max_line", 2**63, "max_line must be 1..2**63-1 bytes"),
    ("max_connections", 0.5, "max_connections must be a whole number 1..2**63-1"),
    ("idle_timeout", "30", f"idle_timeout must be a number {YEAR}, not '30'"),
    ("max_client_memory", "-1", "not a byte count: '-1'"),
    ("suffix", 5, "suffix must be text such as '_SB', not 5"),
]


def fault_cases() -> list[tuple[str, Any, str]]:
    return [case for case in LIBRARY_CASES if case[0] in FAULT_FIELDS]


def assert_one_line(error: ConfigError, message: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert len(text) < 200
    assert message in text


@pytest.mark.parametrize(("option", "value", "message"), LIBRARY_CASES)
def test_server_config_refuses_in_one_line(option: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ServerConfig(**{option: value})
    assert_one_line(refused.value, message)


@pytest.mark.parametrize(("option", "value", "message"), fault_cases())
async def test_set_faults_refuses_alike_and_changes_nothing(
    echo_server: EchoServer, option: str, value: Any, message: str
) -> None:
    before = echo_server.config
    with pytest.raises(ConfigError) as refused:
        echo_server.set_faults(**{option: value})
    assert_one_line(refused.value, message)
    assert echo_server.config is before
    async with await aioecho.connect(*echo_server.addresses[0]) as client:
        assert await client.request("still") == b"STILL_SB"


@pytest.mark.parametrize(
    ("option", "value"),
    [("jitter", 5), ("delay", "2ms"), ("bandwidth", "64K"), ("fragment", 3), ("drop", 1)],
)
def test_values_of_the_right_type_and_range_pass(option: str, value: Any) -> None:
    assert ServerConfig(**{option: value}).faults.active


def test_a_number_where_text_may_be_given_keeps_its_type() -> None:
    config = ServerConfig(jitter=1, bandwidth=1024, close_after=2048)
    assert (str(config.jitter), str(config.bandwidth), str(config.close_after)) == (
        "1s",
        "1K",
        "2K",
    )


# (flags, what the one line says): values from the command line.
FLAG_CASES: list[tuple[list[str], str]] = [
    (["--delay", DIGITS_400], f"must be {YEAR}, not inf"),
    (["--jitter", DIGITS_400], f"argument --jitter: duration '{'1' * 22}"),
    (["--bandwidth", DIGITS_400], f"argument --bandwidth: byte count '{'1' * 22}"),
    (["--close-after", "9E"], "argument --close-after: not a byte count"),
    (["--drop", "nan"], "drop must be 0..1, not nan"),
    (["--reset", "1e400"], "reset must be 0..1, not inf"),
    (["--fragment", "0.5"], "argument --fragment: invalid int value: '0.5'"),
    (["--stall-after", "0.5"], "argument --stall-after: invalid int value: '0.5'"),
    (["--workers", "257"], f"workers must be 1..{MAX_WORKERS}, not 257"),
    (["--workers", DIGITS_400], f"workers must be 1..{MAX_WORKERS}, not a number of about"),
    (["--max-line", DIGITS_400], f"argument --max-line: byte count '{'1' * 22}"),
    (["--seed", DIGITS_400], "seed must be -9223372036854775808..2**63-1, not a number of"),
]


@pytest.mark.parametrize(("flags", "message"), FLAG_CASES)
def test_flags_are_refused_in_one_line(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = refusal_in_process(capsys, *flags)
    assert line.startswith("aioecho serve: error: ")
    assert message in line
    assert len(line) < 200


@pytest.mark.parametrize(
    ("flags", "message"),
    [FLAG_CASES[0], FLAG_CASES[2], FLAG_CASES[9]],
    ids=["delay", "bandwidth", "workers"],
)
def test_a_real_start_refuses_them_so(flags: list[str], message: str) -> None:
    [line] = refusal_from_a_real_start(*flags)
    assert message in line
