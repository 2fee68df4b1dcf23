"""Durations as people write them: ``150us``, ``2ms``, ``0.5s``, ``1m``, or plain seconds."""

from __future__ import annotations

import re

from .bounds import SECONDS, shown

# Longest unit first, so that "ms" is not read as "m" followed by junk.
_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(us|µs|ms|s|m)?")


class Duration(float):
    """A number of seconds (0 to a year), read from ``N`` (seconds) or ``N`` with a unit.

    Units: ``us`` (or ``µs``), ``ms``, ``s``, ``m`` (minutes); ``N`` may have
    a fraction. A ``float`` everywhere it is used; it prints the short form.
    """

    def __new__(cls, value: float | str) -> Duration:
        if isinstance(value, str):
            value = parse_duration(value)
        SECONDS.check("a duration", value)
        return super().__new__(cls, value)

    def __str__(self) -> str:
        for unit, scale in (("us", 1e-6), ("ms", 1e-3)):
            if self < scale * 1000 and self:
                return f"{self / scale:g}{unit}"
        return f"{float(self):g}s"


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (see :class:`Duration`); ValueError names the accepted forms."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 150us, 2ms, 0.5s, 1m)")
    number, unit = match.groups()
    seconds = float(number) * _UNITS[unit or "s"]  # 400 digits make inf: refused here
    SECONDS.check(f"duration {shown(text.strip())}", seconds)
    return seconds
