"""Option dataclasses that also describe their command-line flags.

A config class declares each option once, as a dataclass field made by
:func:`option`; :func:`add_flags` turns the fields into ``--flags`` (type,
choices and help from the field) and :func:`from_flags` builds the config
back from the parsed flags. The serve and bench commands both work this way.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from .bounds import Check

T = TypeVar("T")

DEFAULT_HELP = " (default: %(default)s)"


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
    say it (a ``float`` of seconds written ``5m``: :class:`~aioecho.durations.Duration`).
    ``check``: what the value may be (:mod:`aioecho.bounds`), checked by the
    config's ``__post_init__`` through :func:`~aioecho.bounds.check_fields`.
    """
    metadata = {
        "help": help, "metavar": metavar, "repeat": repeat, "check": check, "parse": parse,
    }  # fmt: skip
    return dataclasses.field(default=default, metadata=metadata)


def add_flags(parser: argparse.ArgumentParser, config_class: type[Any]) -> None:
    """Add a ``--flag`` for every field of ``config_class``."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        meta = field.metadata
        shown = field.default not in (None, False, "") and not meta["repeat"]
        help_text = meta["help"] + (DEFAULT_HELP if shown else _default_of_repeated(field))
        if hints[field.name] is bool:
            parser.add_argument(flag, action="store_true", help=help_text)
            continue
        kind = _without_none(hints[field.name])
        values: dict[str, Any]
        if typing.get_origin(kind) is typing.Literal:
            values = {"choices": typing.get_args(kind)}
        elif meta["repeat"]:  # a value, or a tuple of them: the flag collects strings
            values = {"action": "append", "type": str}
        else:
            values = {"type": _reading(meta.get("parse") or kind)}
        default = None if meta["repeat"] else field.default
        parser.add_argument(
            flag, default=default, metavar=meta["metavar"], help=help_text, **values
        )


def _default_of_repeated(field: dataclasses.Field[Any]) -> str:
    """A repeatable flag's default, said in words: argparse's is None there."""
    if not field.metadata["repeat"] or field.default in (None, (), ""):
        return ""
    values = field.default if isinstance(field.default, tuple) else (field.default,)
    return f" (default: {', '.join(map(str, values))})"


def from_flags(config_class: type[T], parsed: argparse.Namespace) -> T:
    """The config the parsed flags describe; flags left unset keep the field's default."""
    given = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    return config_class(**{name: value for name, value in given.items() if value is not None})


def _reading(kind: Any) -> Any:
    """``kind`` as an argparse type; a type of ours says in its error what it accepts."""
    if kind in (int, float, str):
        return kind  # argparse's own "invalid int value" says it well

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _without_none(kind: Any) -> Any:
    """``int`` for ``int | None``: None is the default, never typed in."""
    options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return options[0] if typing.get_origin(kind) in (types.UnionType, typing.Union) else kind
