"""Byte counts as people write them: ``65536``, ``64k``, ``64KiB``, ``256M``, ``1G``."""

from __future__ import annotations

from .bounds import BYTES, shown

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_UNITS = {"": 1, "K": KIB, "M": MIB, "G": GIB}


class ByteSize(int):
    """A number of bytes, read from ``N`` or ``N`` followed by K, M or G (powers of 1024).

    The unit may be lower case and end in ``B`` or ``iB``: ``64k``, ``64KB``
    and ``64KiB`` are all 65536. An ``int`` (0 to 2**63-1) everywhere it is
    used; it prints the short form.
    """

    def __new__(cls, value: int | str) -> ByteSize:
        name = "a byte count"
        if isinstance(value, str):
            name, value = f"byte count {shown(value.strip())}", _parse(value)
        BYTES.check(name, value)
        return super().__new__(cls, value)

    def __str__(self) -> str:
        for unit in ("G", "M", "K"):
            if self and self % _UNITS[unit] == 0:
                return f"{self // _UNITS[unit]}{unit}"
        return str(int(self))


def _parse(text: str) -> int:
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _UNITS else ""
    number = cleaned[: len(cleaned) - len(unit)]
    if not number.isdigit():
        raise ValueError(f"not a byte count: {text!r} (use e.g. 65536, 64K, 64KiB, 256M, 1G)")
    return int(number) * _UNITS[unit]


def parse_size(text: str) -> int:
    """The bytes in ``text`` (see :class:`ByteSize`) as a plain ``int``.

    For options that stay whole numbers once read (``--max-line``): ValueError
    names the accepted forms.
    """
    return int(ByteSize(text))
