"""What an option's value may be: one check for every value, whoever gives it.

A config dataclass declares each field's :class:`Bounds` (or :data:`TEXT`)
in the field's metadata (see :func:`aioecho.options.option`), and
:func:`check_fields` checks them all in one pass. The command line, the
library, ``set_faults()`` and the pytest marker all build the same config,
so a value is refused the same way, in one line, wherever it comes from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

# The largest whole number the server takes anywhere: what a Py_ssize_t (the
# compiled core's type for sizes and counts) and the kernel's 64-bit counters
# hold. Python's int would go on; the C code and the float arithmetic of the
# faults would not (a 400-digit bandwidth overflowed in every connection).
MAX_WHOLE = 2**63 - 1
# The longest duration taken: a year. Longer is a typo, and every timer
# of both loops still takes it.
MAX_SECONDS = 365 * 24 * 3600.0
# How much of a refused value a message shows (a 400-digit number stays one short line).
SHOWN_CHARS = 24
BIG_INT_BITS = 64


class Check(Protocol):
    """Something that refuses a value with a one-line :class:`ValueError`."""

    def check(self, name: str, value: object) -> None: ...


@dataclass(frozen=True, slots=True)
class Bounds:
    """A number of type ``kind`` (``int``: whole) from ``low`` to ``high``, both included.

    A ``float`` option takes an ``int`` too; neither takes a ``bool`` or a
    text, and a ``float`` must be finite. ``unit`` ends the range in messages.
    """

    kind: type[int] | type[float]
    low: float
    high: float
    unit: str = ""

    def check(self, name: str, value: object) -> None:
        """Raise ValueError, naming ``name``, unless ``value`` is of the kind and in range."""
        if not self.is_kind(value):
            kind = "a whole number" if self.kind is int else "a number"
            raise ValueError(f"{name} must be {kind} {self.range}, not {shown(value)}")
        assert isinstance(value, int | float)
        finite = isinstance(value, int) or math.isfinite(value)  # an int may not fit a float
        if not (finite and self.low <= value <= self.high):
            raise ValueError(f"{name} must be {self.range}, not {shown(value)}")

    def is_kind(self, value: object) -> bool:
        if isinstance(value, bool):
            return False
        return isinstance(value, int if self.kind is int else int | float)

    @property
    def range(self) -> str:
        return f"{number(self.low)}..{number(self.high)}{self.unit}"


@dataclass(frozen=True, slots=True)
class Text:
    """A text value (``str``)."""

    example: str

    def check(self, name: str, value: object) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text such as {self.example}, not {shown(value)}")


SECONDS = Bounds(float, 0, MAX_SECONDS, " seconds")
BYTES = Bounds(int, 0, MAX_WHOLE, " bytes")
COUNT = Bounds(int, 0, MAX_WHOLE)
PORT = Bounds(int, 0, 65535)
PROBABILITY = Bounds(float, 0, 1)


def check_fields(config: Any, error: type[Exception]) -> None:
    """Check every field of the dataclass ``config`` whose metadata has a ``check``.

    ``None`` passes where it is the field's default. The first value
    refused raises ``error`` with the check's one line.
    """
    for field in dataclasses.fields(config):
        checker: Check | None = field.metadata.get("check")
        value = getattr(config, field.name)
        if checker is None or (value is None and field.default is None):
            continue
        try:
            checker.check(field.name, value)
        except ValueError as exc:
            raise error(str(exc)) from None


def number(value: float) -> str:
    """A bound as a person reads it: ``2**63-1`` rather than its 19 digits."""
    if value == MAX_WHOLE:
        return "2**63-1"
    return str(int(value)) if value == int(value) else f"{value:g}"


def shown(value: object) -> str:
    """``value`` in a message, cut short if long."""
    if isinstance(value, int) and value.bit_length() > BIG_INT_BITS:
        # Too long to print whole, and str() refuses ints over 4,300 digits.
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
