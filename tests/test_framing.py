"""The batch echo transform, byte by byte, without sockets."""

from __future__ import annotations

import random

import pytest

from aioecho.core import LineEcho

from .support import LINE_RULES


@pytest.mark.parametrize(("lines", "replies"), LINE_RULES)
def test_lines(lines: bytes, replies: bytes) -> None:
    assert LineEcho(b"_SB", 100).lines(lines) == replies


def test_every_byte_value_but_letters_passes_through() -> None:
    body = bytes(b for b in range(256) if b != 0x0A)
    expected = bytes(b - 32 if 0x61 <= b <= 0x7A else b for b in body)
    assert LineEcho(b"_SB", 1000).lines(body + b"\n") == expected + b"_SB\n"


def random_lines(rng: random.Random) -> bytes:
    """Whole lines of any bytes, CRs and empty lines included, as one read."""
    alphabet = b"aZz{`@\r\x00\xff\xc3\x9f " + bytes(range(0x61, 0x7B))
    lines = []
    for _ in range(rng.randrange(1, 12)):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        lines.append(body + rng.choice([b"\n", b"\r\n"]))
    return b"".join(lines)


@pytest.mark.parametrize("suffix", [b"_SB", b"", b"-a much longer suffix-"])
@pytest.mark.parametrize("unicode", [False, True])
def test_a_read_is_answered_as_its_lines_are(suffix: bytes, unicode: bool) -> None:
    # Compiled, read_replies() is one C pass over the read: it must agree
    # with lines() byte for byte, whatever the bytes.
    echo = LineEcho(suffix, 1000, unicode)
    rng = random.Random(f"{suffix!r}/{unicode}")
    for _ in range(300):
        read = random_lines(rng)
        buffer = bytearray(read) + bytearray(b"left over from an earlier read\n")
        assert echo.read_replies(buffer, len(read)) == echo.lines(read), read


@pytest.mark.parametrize("suffix", [b"", b"!", b"-ok-"])
def test_other_suffixes(suffix: bytes) -> None:
    echo = LineEcho(suffix, 100)
    assert echo.lines(b"a\r\nb\n") == b"A" + suffix + b"\r\nB" + suffix + b"\n"
    assert echo.partial(b"tail") == b"TAIL" + suffix


@pytest.mark.parametrize(
    ("complete", "offset"),
    [
        (b"abcd\n", -1),  # exactly at the limit
        (b"abcd\r\n", -1),  # CR is part of the terminator, not the body
        (b"abcde\n", 0),
        (b"ok\nabcd\r\nabcde\nxx\n", 9),
        (b"ok\n" * 50 + b"abcd\n", -1),
        (b"ok\n" * 50 + b"abcd\r\r\n", 150),
    ],
)
def test_first_too_long(complete: bytes, offset: int) -> None:
    assert LineEcho(b"_SB", 4).first_too_long(complete) == offset


@pytest.mark.parametrize(
    ("partial", "too_long"),
    [(b"abcd", False), (b"abcd\r", False), (b"abcde", True), (b"abcd\r\r", True)],
)
def test_partial_too_long(partial: bytes, too_long: bool) -> None:
    assert LineEcho(b"_SB", 4).partial_too_long(partial) is too_long


def test_error_line_names_the_limit_and_lacks_the_suffix() -> None:
    error = LineEcho(b"_SB", 4).too_long_error
    assert error == b"ERR line too long (max 4 bytes)\n"


def reference_first_too_long(complete: bytes, max_line: int) -> int:
    """The rule spelled out line by line: body = line without LF and one trailing CR."""
    offset = 0
    for line in complete.split(b"\n")[:-1]:
        body = line[:-1] if line.endswith(b"\r") else line
        if len(body) > max_line:
            return offset
        offset += len(line) + 1
    return -1


@pytest.mark.parametrize("seed", range(40))
def test_first_too_long_agrees_with_the_rule(seed: int) -> None:
    rng = random.Random(seed)
    max_line = rng.choice([1, 2, 5, 16, 100])
    lengths = [
        rng.choice([0, 1, max_line - 1, max_line, max_line + 1, max_line + 2, 3]) for _ in range(60)
    ]
    lines = [b"x" * max(0, n - 1) + rng.choice([b"x", b"\r"]) if n else b"" for n in lengths]
    complete = b"".join(line + b"\n" for line in lines)
    echo = LineEcho(b"_SB", max_line)
    assert echo.first_too_long(complete) == reference_first_too_long(complete, max_line)
