"""Which build of the hot modules runs: compiled extensions or pure Python.

The per-connection modules listed in ``HOT_MODULES`` may also exist as C
extensions compiled from the same ``.py`` files (see ``setup.py``). Python's
import system would take such an extension over the ``.py`` beside it
whatever its age, so after an edit of the source a developer could run the
old code without knowing. Instead, the build records a digest of every
source it compiled (``DIGESTS_FILE``), and this module, imported before any
hot module, loads the extensions only if all of them are present and every
digest still matches its ``.py``; otherwise all hot modules load from source.
``AIOECHO_NO_EXTENSIONS=1`` forces the source.

This file uses the standard library only: ``setup.py`` loads it on its own to
share the module list and the digest with the build.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

HOT_MODULES = (
    "aioecho.framing",
    "aioecho.connections",
    "aioecho.protocol",
    # Not hot, but it derives from the protocol, and a class of the source
    # cannot derive from a compiled class: it is compiled with its base.
    "aioecho.fault_protocol",
    "aioecho.bench.connection",
)
"""The modules compiled when a C compiler is present."""

DISABLE_VARIABLE = "AIOECHO_NO_EXTENSIONS"
DIGESTS_FILE = "_compiled.json"
"""Written by the build beside this file: module name -> digest of its source, for
the hot modules and every module of the package they import (mypyc may build
what it knows of those, such as ``Final`` constants, into the compiled code)."""

PACKAGE_DIR = Path(__file__).resolve().parent


def source_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The ``.py`` file of a module of this package (``__init__.py`` for a package)."""
    path = package_dir.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def source_digest(module: str, package_dir: Path = PACKAGE_DIR) -> str | None:
    """The digest of the module's current source; None if it has none."""
    try:
        return hashlib.sha256(source_path(module, package_dir).read_bytes()).hexdigest()
    except OSError:
        return None


def extension_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The module's compiled extension for this interpreter, if there is one."""
    source = source_path(module, package_dir)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def changed_since_build(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The modules whose source is not what the build compiled against."""
    try:
        built_from: dict[str, str] = json.loads((package_dir / DIGESTS_FILE).read_text())
    except (OSError, ValueError):
        return list(HOT_MODULES)
    recorded = [*HOT_MODULES, *(m for m in built_from if m not in HOT_MODULES)]
    return [m for m in recorded if built_from.get(m) != source_digest(m, package_dir)]


def fresh_extensions(package_dir: Path = PACKAGE_DIR) -> dict[str, Path] | None:
    """Every hot module's extension, or None unless all exist and match their sources.

    Warns when extensions exist but were built from other sources: a
    development checkout edited since its last ``pip install -e .``.
    """
    found = {module: extension_path(module, package_dir) for module in HOT_MODULES}
    extensions = {module: path for module, path in found.items() if path is not None}
    if not extensions:
        return None
    changed = changed_since_build(package_dir)
    missing = [module for module in HOT_MODULES if module not in extensions]
    if changed or missing:
        reasons = [f"{', '.join(changed)} changed"] if changed else []
        reasons += [f"no extension for {', '.join(missing)}"] if missing else []
        warnings.warn(
            f"aioecho: compiled extensions ignored, running pure Python: "
            f"{'; '.join(reasons)} since the build (rebuild with: pip install -e .)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return extensions


class BuildFinder:
    """Loads each hot module from the build chosen at startup, extension or source."""

    def __init__(self, extensions: dict[str, Path] | None, package_dir: Path) -> None:
        self._extensions = extensions
        self._package_dir = package_dir

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in HOT_MODULES:
            return None  # everything else: the usual finders
        if self._extensions is not None:
            origin = str(self._extensions[name])
            loader: importlib.machinery.ExtensionFileLoader | importlib.machinery.SourceFileLoader
            loader = importlib.machinery.ExtensionFileLoader(name, origin)
        else:
            origin = str(source_path(name, self._package_dir))
            loader = importlib.machinery.SourceFileLoader(name, origin)
        return importlib.util.spec_from_file_location(name, origin, loader=loader)


def install() -> bool:
    """Choose the build for this process; True if the compiled modules are used."""
    disabled = os.environ.get(DISABLE_VARIABLE, "") not in ("", "0")
    extensions = None if disabled else fresh_extensions()
    sys.meta_path.insert(0, BuildFinder(extensions, PACKAGE_DIR))
    return extensions is not None


if __name__ == "aioecho.extensions":  # not when setup.py loads this file on its own
    COMPILED = install()
    """True when the hot modules run compiled, False when they run as pure Python."""
