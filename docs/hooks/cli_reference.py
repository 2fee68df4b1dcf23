"""The CLI reference, generated at build time from the command line's own parsers.

mkdocs.yml lists this file under ``hooks:``. A page holding the line
``<!-- cli-reference -->`` gets, in its place, every command's usage,
description, argument groups (each flag with its help and default) and
epilog, as ``aioecho.cli.parsers()`` builds them: a flag added to the code
is in the reference at the next build, and one removed is gone from it.
"""

from __future__ import annotations

import argparse
import functools
import html
import re
from typing import Any

from aioecho.cli import parsers

MARKER = "<!-- cli-reference -->"
# Usage lines wrap at this width wherever the site is built, not at the terminal's.
WIDTH = 88
# Characters that would turn help text into Markdown emphasis, code or links.
_MARKDOWN = re.compile(r"([\\`*_\[\]])")
# Defaults that mean "not given" and say nothing worth a line.
_SILENT_DEFAULTS = (None, False, "", [], (), argparse.SUPPRESS)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs hook: the marker replaced by the reference; other pages pass through."""
    return markdown.replace(MARKER, reference()) if MARKER in markdown else markdown


def reference() -> str:
    """Markdown for every command: a ``##`` section each."""
    return "\n".join(command(name, parser) for name, parser in parsers().items())


def command(name: str, parser: argparse.ArgumentParser) -> str:
    """One command's section: usage, description, groups of flags, epilog."""
    parser.formatter_class = functools.partial(parser.formatter_class, width=WIDTH)
    parts = [f"## {name}", "", "```text", parser.format_usage().strip(), "```", ""]
    if parser.description:
        parts += [_prose(parser, parser.description), ""]
    # argparse keeps its groups in private fields and offers no public view of them.
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if actions:
            parts += [f"### {name}: {group.title}", ""]
            if group.description:
                parts += [_prose(parser, group.description), ""]
            parts += [_flag(parser, action) for action in actions] + [""]
    if parser.epilog:
        parts += [_prose(parser, parser.epilog), ""]
    return "\n".join(parts)


def invocation(action: argparse.Action) -> str:
    """How a flag is written, in code spans: `--port PORT`, `-h`, `--help`."""
    if action.nargs == 0:
        shown = ""
    elif action.metavar is not None:
        shown = f" {action.metavar}"
    elif action.choices is not None:
        shown = " {" + ",".join(map(str, action.choices)) + "}"
    else:
        shown = f" {action.dest.upper()}"
    names = action.option_strings or [shown.strip()]
    return ", ".join(f"`{name}{shown if action.option_strings else ''}`" for name in names)


def _flag(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = _expanded_help(parser, action)
    if "default" not in text and action.default not in _SILENT_DEFAULTS:
        text += f" (default: {action.default})"
    return f"- {invocation(action)}: {_escaped(text)}"


def _expanded_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help as ``--help`` prints it: ``%(default)s`` and the like filled in."""
    values = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    values["prog"] = parser.prog
    if values.get("choices") is not None:
        values["choices"] = ", ".join(map(str, values["choices"]))
    return (action.help or "") % values


def _prose(parser: argparse.ArgumentParser, text: str) -> str:
    """A description or epilog: as written when the parser keeps its line breaks."""
    if issubclass(_formatter_class(parser), argparse.RawDescriptionHelpFormatter):
        return f"```text\n{text.strip()}\n```"
    return _escaped(" ".join(text.split()))


def _formatter_class(parser: argparse.ArgumentParser) -> type[Any]:
    kind = parser.formatter_class
    return kind.func if isinstance(kind, functools.partial) else kind


def _escaped(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))
