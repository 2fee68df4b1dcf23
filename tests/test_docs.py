"""The documentation site: it builds without a warning, and its CLI reference is complete."""

from __future__ import annotations

import html
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from aioecho.cli import parsers

from .extras import needs

ROOT = Path(__file__).parent.parent


def cli_reference() -> SimpleNamespace:
    """The build hook that writes the CLI reference (docs/ is no package: run by path)."""
    return SimpleNamespace(**runpy.run_path(str(ROOT / "docs" / "hooks" / "cli_reference.py")))


def sections(reference: str) -> dict[str, str]:
    """The reference cut at its ``## command`` headings."""
    parts = reference.split("\n## ")
    parts[0] = parts[0].removeprefix("## ")
    return {part.split("\n", 1)[0]: part for part in parts}


def flags(command: str) -> list[str]:
    return [flag for action in parsers()[command]._actions for flag in action.option_strings]


def test_the_three_commands_have_parsers() -> None:
    assert list(parsers()) == ["serve", "client", "bench"]


@pytest.mark.parametrize("command", ["serve", "client", "bench"])
def test_every_flag_is_in_the_generated_reference(command: str) -> None:
    section = sections(cli_reference().reference())[command]
    missing = [flag for flag in flags(command) if f"`{flag}" not in section]
    assert not missing
    assert len(flags(command)) > 10


def test_the_reference_says_help_and_defaults_as_help_does() -> None:
    section = sections(cli_reference().reference())["bench"]
    assert "- `--repeat N`: run N times and report the median and its 95% bootstrap interval " \
        "(default: 1)" in section  # fmt: skip
    assert "- `--max-regression PCT`: how much worse than --baseline still passes " \
        "(default: 10%)" in section  # fmt: skip
    assert "Drive many concurrent connections against an echo server" in section
    assert "usage: aioecho bench [-h]" in section


def test_the_marker_is_replaced_only_where_it_stands() -> None:
    hook = cli_reference()
    assert hook.on_page_markdown("# A page\n") == "# A page\n"
    page = hook.on_page_markdown(f"# CLI\n\n{hook.MARKER}\n")
    assert hook.MARKER not in page
    assert "## serve" in page
    assert "## client" in page


@needs("docs", "mkdocs")
def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    assert "WARNING -" not in build.stderr
    page = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("serve", "client", "bench"):
        assert not [flag for flag in flags(command) if html.escape(flag) not in page]
    figures = (site / "benchmarks" / "index.html").read_text()
    assert "benchmarks" in figures.lower()
    assert next((site / "benchmarks" / "results").glob("*.png"), None) is not None
