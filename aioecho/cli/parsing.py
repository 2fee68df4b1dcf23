"""What the commands' parsers share: one-line errors, grouped flags made from
a config dataclass, and help that shows each default as it would be typed.

A config class declares each option once, as a field made by
:func:`aioecho.options.option`; :func:`add_flags` turns the fields into
``--flags`` (type, choices, help and default from the field) and
:func:`from_flags` builds the config back from the parsed flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

# (title, the dests of its flags): the argument groups of one command's --help.
Sections = Sequence[tuple[str, Sequence[str]]]
Container = argparse._ActionsContainer


class Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line and exit code 2, without the usage dump.

    Its description and epilog are printed as written (examples keep their lines).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.fail(f"{message} (see --help)")

    def fail(self, message: str) -> NoReturn:
        """End with ``message`` on one line and exit code 2 (usage or environment)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


class Collect(argparse.Action):
    """A repeatable flag: each use adds a value, and the first replaces the default.

    argparse's ``append`` would add to a default list (one set from the
    environment, say) instead of replacing it.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        earlier = getattr(namespace, self.dest, None)
        kept = [] if earlier is None or earlier is self.default else list(earlier)
        setattr(namespace, self.dest, [*kept, values])


def add_sections(parser: argparse.ArgumentParser, sections: Sections) -> dict[str, Container]:
    """An argument group per section; the group each dest's flag goes in."""
    placed: dict[str, Container] = {}
    for title, dests in sections:
        group = parser.add_argument_group(title)
        placed.update(dict.fromkeys(dests, group))
    return placed


def add_flags(
    parser: argparse.ArgumentParser,
    config_class: type[Any],
    placed: Mapping[str, Container] | None = None,
) -> None:
    """Add a ``--flag`` for every field of ``config_class``, in its group of ``placed``."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        container = (placed or {}).get(field.name, parser)
        flag = "--" + field.name.replace("_", "-")
        meta = field.metadata
        kind = _without_none(hints[field.name])
        reading = meta.get("parse") or kind
        help_text = meta["help"] + default_note(field.default, reading)
        # A repeatable flag's values replace its default: argparse's is None.
        values: dict[str, Any] = {"default": None if meta["repeat"] else field.default}
        if kind is bool:
            values["action"] = "store_true"
        elif typing.get_origin(kind) is typing.Literal:
            values.update(choices=typing.get_args(kind), metavar=meta["metavar"])
        elif meta["repeat"]:  # a value, or a tuple of them: the flag collects strings
            values.update(action=Collect, metavar=meta["metavar"])
        else:
            values.update(type=_reading(reading), metavar=meta["metavar"])
        container.add_argument(flag, help=help_text, **values)


def default_note(default: Any, reading: Any = None) -> str:
    """`` (default: X)`` with X as it would be typed; nothing for None, off or empty.

    ``reading`` is the type the flag's text is read into: a default of
    ``30.0`` seconds shows as that type prints it, ``30s``.
    """
    values = default if isinstance(default, tuple) else (default,)
    if all(value is None or value is False or value == "" for value in values):
        return ""
    shown = ", ".join(_typed(value, reading) for value in values)
    return f" (default: {shown})".replace("%", "%%")  # help texts are %-formatted


def _typed(value: Any, reading: Any) -> str:
    if isinstance(reading, type) and not isinstance(value, reading):
        return str(reading(value))
    return str(value)


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


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    """The subcommands of ``parser``."""
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
