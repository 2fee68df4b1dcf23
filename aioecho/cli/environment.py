"""Flags set from the environment: ``--max-line`` from ``AIOECHO_MAX_LINE``.

A variable becomes its flag's default, so a flag on the command line still
wins. Its text is read as the flag's would be; on/off flags take ``1``,
``true``, ``yes``, ``on`` or ``0``, ``false``, ``no``, ``off``; repeatable
flags take a comma-separated list. A bad value names the variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .parsing import Collect, Parser

PREFIX = "AIOECHO_"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")

HELP = f"""\
environment:
  Every flag can also be set as {PREFIX}<FLAG>: --max-line 1M is {PREFIX}MAX_LINE=1M.
  A flag given on the command line wins over its variable. On/off flags take
  {"/".join(TRUE)} or {"/".join(FALSE)}; --host takes a comma-separated list.
"""


def variable(action: argparse.Action) -> str:
    """The environment variable of a flag: ``AIOECHO_MAX_LINE`` for ``--max-line``."""
    flag = max(action.option_strings, key=len)
    return PREFIX + flag.removeprefix("--").replace("-", "_").upper()


def flags_with_values(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags of ``parser`` that set something (all but ``--help`` and ``--version``)."""
    passive = (argparse._HelpAction, argparse._VersionAction)
    return [a for a in parser._actions if a.option_strings and not isinstance(a, passive)]


def apply(parser: Parser, environ: Mapping[str, str]) -> dict[str, str]:
    """Make every set variable its flag's default; which dests came from which variable.

    A value the flag would refuse ends the program in one line that names
    the variable, with exit code 2.
    """
    taken: dict[str, str] = {}
    for action in flags_with_values(parser):
        name = variable(action)
        if name not in environ:
            continue
        try:
            value = _read(action, environ[name])
        except (ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(f"{name}: {exc}")
        parser.set_defaults(**{action.dest: value})
        taken[action.dest] = name
    return taken


def _read(action: argparse.Action, text: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        return _switch(text)
    if isinstance(action, Collect):
        return [_value(action, part.strip()) for part in text.split(",")]
    return _value(action, text)


def _switch(text: str) -> bool:
    word = text.strip().lower()
    if word not in TRUE + FALSE:
        raise ValueError(f"not on or off: {text!r} (use {'/'.join(TRUE)} or {'/'.join(FALSE)})")
    return word in TRUE


def _value(action: argparse.Action, text: str) -> Any:
    """``text`` read as the flag reads it: its type, then its choices."""
    value: Any = text
    if callable(action.type):
        try:
            value = action.type(text)
        except (TypeError, ValueError):  # int or float; a type of ours says more itself
            kind = getattr(action.type, "__name__", "value")
            raise ValueError(f"invalid {kind} value: {text!r}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        raise ValueError(f"invalid choice: {text!r} (choose from {choices})")
    return value
