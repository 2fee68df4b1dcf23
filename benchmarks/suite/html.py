"""One self-contained HTML page of a report: the Markdown the suite writes,
with its tables as tables and its plots inline (base64 PNG, where the
Markdown links or shows them), so that the page opens anywhere, offline, as
one file.

Only what the suite's Markdown uses is rendered: headings, paragraphs,
bullet lists, pipe tables, images, ``code``, **bold** and links.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f6f6f6; padding: 0 0.2em; }
"""
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def to_html(markdown: str, title: str, base: Path) -> str:
    """The page; images are read from paths relative to ``base`` and inlined."""
    body = "\n".join(_blocks(markdown.splitlines(), base))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_compact(STYLE)}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _compact(css: str) -> str:
    """The style sheet on one line: a page carries it, not a copy of this module's lines."""
    return " ".join(css.split())


def _blocks(lines: list[str], base: Path) -> Iterator[str]:
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            yield f"<h{level}>{_inline(line[level:].strip(), base)}</h{level}>"
            index += 1
        elif line.startswith("|"):
            end = _run(lines, index, lambda text: text.startswith("|"))
            yield _table(lines[index:end], base)
            index = end
        elif line.startswith("- "):
            end = _run(lines, index, lambda text: text.startswith(("- ", "  ")))
            items = "\n".join(lines[index:end]).split("\n- ")
            yield (
                "<ul>"
                + "".join(f"<li>{_inline(item.removeprefix('- '), base)}</li>" for item in items)
                + "</ul>"
            )
            index = end
        else:
            end = _run(lines, index, lambda text: bool(text.strip()) and text[0] not in "#|")
            yield f"<p>{_inline(' '.join(lines[index:end]), base)}</p>"
            index = end


def _run(lines: list[str], start: int, keeps: Callable[[str], bool]) -> int:
    end = start + 1
    while end < len(lines) and keeps(lines[end]):
        end += 1
    return end


def _table(rows: list[str], base: Path) -> str:
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], [row for row in cells[1:] if not set("".join(row)) <= set("-: ")]
    head = "".join(f"<th>{_inline(cell, base)}</th>" for cell in header)
    rows_html = "".join(
        "<tr>" + "".join(f"<td>{_inline(cell, base)}</td>" for cell in row) + "</tr>"
        for row in body
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"


def _inline(text: str, base: Path) -> str:
    escaped = html.escape(text, quote=False)
    escaped = _IMAGE.sub(lambda match: _image(match.group(1), match.group(2), base), escaped)
    escaped = _LINK.sub(lambda match: _link(match.group(1), match.group(2), base), escaped)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def _link(text: str, target: str, base: Path) -> str:
    """A link; one to a plot of the report becomes the plot itself, inline."""
    if target.endswith(".png") and "/" not in target:
        return f"{text}<br>{_image(text, target, base)}"
    return f'<a href="{target}">{text}</a>'


def _image(alt: str, path: str, base: Path) -> str:
    file = base / html.unescape(path)
    try:
        data = base64.b64encode(file.read_bytes()).decode("ascii")
    except OSError:
        return f"<em>[{alt}: {html.escape(path)} missing]</em>"
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'
