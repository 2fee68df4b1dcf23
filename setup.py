"""Compiles the hot modules to C extensions where possible; pure Python otherwise.

Everything else about the package is in pyproject.toml. The extensions are
built by mypyc from the very ``.py`` files that the pure-Python install runs
(aioecho/extensions.py says which). Without mypyc or a working C compiler,
or with AIOECHO_NO_EXTENSIONS=1 set, the install still succeeds and runs the
source.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "aioecho"
BUILD_FAILURES = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError)


def load_build_plan() -> ModuleType:
    """aioecho/extensions.py on its own: the module list and the source digest."""
    path = PACKAGE / "extensions.py"
    spec = importlib.util.spec_from_file_location("aioecho_build_plan", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAN = load_build_plan()
DIGESTS: dict[str, str] = {}


def wanted() -> str | None:
    """Why the extensions are not built here, or None to build them."""
    if os.environ.get(PLAN.DISABLE_VARIABLE, "") not in ("", "0"):
        return f"{PLAN.DISABLE_VARIABLE} is set"
    if sys.implementation.name != "cpython":
        return "not CPython"
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed"
    return None


def extension_modules() -> list[Any]:
    """The hot modules as mypyc extensions, or none."""
    if (reason := wanted()) is not None:
        print(f"aioecho: pure Python only ({reason})", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    sources = [str(PLAN.source_path(module, Path("aioecho"))) for module in PLAN.HOT_MODULES]
    # The digests of the sources as they are compiled now.
    DIGESTS.update((module, PLAN.source_digest(module, PACKAGE)) for module in compiled_against())
    try:
        # The package's other modules are type-checked only for what the hot
        # ones use: the build has none of the optional dependencies they import.
        options = ["--follow-imports=silent"]
        # One shared library for the group, inside the package, beside the
        # per-module stubs; the generated C goes to build/.
        built = mypycify(options + sources, group_name="aioecho._hot", target_dir="build/mypyc")
        return list(built)
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        print(f"aioecho: pure Python only (mypyc failed: {exc!r})", file=sys.stderr)
        return []


def compiled_against() -> list[str]:
    """The hot modules and every module of the package they import, directly or not."""
    seen: list[str] = []
    pending = list(PLAN.HOT_MODULES)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.append(module)
            pending += package_imports(module)
    return sorted(seen)


def package_imports(module: str) -> list[str]:
    """The modules of the package that ``module`` imports."""
    tree = ast.parse(PLAN.source_path(module, PACKAGE).read_text(), module)
    is_package = PLAN.source_path(module, PACKAGE).name == "__init__.py"
    parts = module.split(".") if is_package else module.split(".")[:-1]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            origin = ".".join(filter(None, [base, node.module]))
            # ``from . import x`` may name a module as well as an attribute.
            names += [origin, *(f"{origin}.{alias.name}" for alias in node.names)]
    return [name for name in names if is_package_module(name)]


def is_package_module(name: str) -> bool:
    return name.split(".")[0] == PACKAGE.name and PLAN.source_path(name, PACKAGE).is_file()


class OptionalBuildExt(build_ext):
    """Builds the extensions if the C compiler works; otherwise leaves pure Python.

    Records the digest of every compiled source beside the extensions, so
    that an extension is never used once its source has changed.
    """

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except BUILD_FAILURES as exc:
            self._remove_partial_build()
            print(f"aioecho: C extensions not built, pure Python only: {exc}", file=sys.stderr)
            return
        self._record_digests()

    def _remove_partial_build(self) -> None:
        # All or nothing: aioecho would not use a partial set anyway.
        for output in self.get_outputs():
            Path(output).unlink(missing_ok=True)

    def _record_digests(self) -> None:
        targets = [Path(self.build_lib, "aioecho")]
        if self.inplace:  # an editable install: the extensions sit beside the sources
            targets.append(PACKAGE)
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            (target / PLAN.DIGESTS_FILE).write_text(json.dumps(DIGESTS, indent=1) + "\n")


setup(ext_modules=extension_modules(), cmdclass={"build_ext": OptionalBuildExt})
