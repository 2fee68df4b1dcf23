"""benchmarks/README.md as a page of the site, with the files it links to.

The benchmark figures stay beside the suite that makes them; this hook
(listed under ``hooks:`` in mkdocs.yml) adds that README to the site as
``benchmarks/``, and with it every file it links to (plots, result tables,
the baseline servers' sources), so that its links and images work on the
site as they do in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

FOLDER = "benchmarks"
# The target of a Markdown link or image: [text](target) or ![alt](target).
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """mkdocs hook: the README and the files it links to join the site's files."""
    root = Path(config.config_file_path).parent
    for name in ["README.md", *linked_files(root / FOLDER)]:
        files.append(
            File(
                f"{FOLDER}/{name}",
                src_dir=str(root),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    """mkdocs hook: in the benchmarks' pages, links made for the repository work on the site.

    A link to a folder opens its README; a link into ``docs/`` opens that page
    of the site, where ``docs/`` is the root.
    """
    if not page.file.src_uri.startswith(f"{FOLDER}/"):
        return markdown
    folder = Path(page.file.abs_src_path or "").parent
    markdown = _LINK.sub(lambda link: _to_readme(folder, link), markdown)
    return markdown.replace("](../docs/", "](../")


def linked_files(folder: Path) -> list[str]:
    """Files under ``folder`` that its README links to, relative to it.

    A link to a folder stands for that folder's README.
    """
    targets = _LINK.findall((folder / "README.md").read_text(encoding="utf-8"))
    files = {_readme_of(folder, target) or target for target in targets if "://" not in target}
    return sorted(name for name in files if (folder / name).is_file() and name != "README.md")


def _to_readme(folder: Path, link: re.Match[str]) -> str:
    readme = _readme_of(folder, link.group(1))
    return link.group(0) if readme is None else link.group(0).replace(link.group(1), readme, 1)


def _readme_of(folder: Path, target: str) -> str | None:
    """``c/README.md`` for the target ``c/``, when that folder has a README."""
    if target.endswith("/") and (folder / target / "README.md").is_file():
        return f"{target}README.md"
    return None
