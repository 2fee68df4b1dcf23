"""File permission bits as people write them for chmod: ``600``, ``0660``, ``0o660``."""

from __future__ import annotations

# Read, write and execute for user, group and others; setuid, setgid and the
# sticky bit mean nothing on a socket file.
MAX_MODE = 0o777


class FileMode(int):
    """Permission bits 0..0o777, read from octal text; an ``int`` wherever it is used."""

    def __new__(cls, value: int | str) -> FileMode:
        if isinstance(value, str):
            value = _parse(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"not a file mode: {value!r} (an int, or octal text such as '660')")
        if not 0 <= value <= MAX_MODE:
            raise ValueError(f"not a file mode: {value:#o} (0 to 777 in octal)")
        return super().__new__(cls, value)

    def __str__(self) -> str:
        return f"{int(self):04o}"


def _parse(text: str) -> int:
    digits = text.strip().lower().removeprefix("0o")
    if not digits or not set(digits) <= set("01234567"):
        raise ValueError(f"not a file mode: {text!r} (octal, as chmod takes it: 600, 660)")
    return int(digits, 8)
