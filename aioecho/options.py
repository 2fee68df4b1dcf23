"""Option dataclasses that also describe their command-line flags.

A config class declares each option once, as a dataclass field made by
:func:`option`: its default, help text, metavar, how its text is read and
what it may be. The command line (:mod:`aioecho.cli.parsing`) makes the
``--flags`` of serve, client and bench from these fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .bounds import Check


def option(
    default: Any,
    help: str,
    metavar: str | None = None,
    *,
    repeat: bool = False,
    check: Check | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A dataclass field whose metadata also describes its command-line flag.

    ``repeat``: the flag may be given several times, collecting a tuple.
    ``parse``: how the flag's text is read, where the field's type does not
    say it (a ``float`` of seconds written ``5m``: :class:`~aioecho.durations.Duration`;
    a byte count written ``64K``: :func:`~aioecho.sizes.parse_size`).
    ``check``: what the value may be (:mod:`aioecho.bounds`), checked by the
    config's ``__post_init__`` through :func:`~aioecho.bounds.check_fields`.
    """
    metadata = {
        "help": help, "metavar": metavar, "repeat": repeat, "check": check, "parse": parse,
    }  # fmt: skip
    return dataclasses.field(default=default, metadata=metadata)
