"""Compiles ``aioecho/_core`` with Cython where possible; pure Python otherwise.

Everything else about the package is in pyproject.toml. The build copies the
core's sources (each ``.py`` and the ``.pxd`` that types it) to
``build/core/aioecho/_core_c/``, adds ``built_from.py`` holding the digest of
the sources, and compiles the copy into the package ``aioecho._core_c``.
``aioecho/core.py`` runs that package only while its digest matches
``aioecho/_core`` as it is now. Without Cython or a working C compiler, or
with AIOECHO_NO_EXTENSIONS=1 set, the install still succeeds and runs the
source.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

ROOT = Path(__file__).resolve().parent
BUILD_FAILURES = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError)
DISABLE_VARIABLE = "AIOECHO_NO_EXTENSIONS"
# Relative to ROOT: setuptools wants the sources of an extension so.
COPY_ROOT = Path("build", "core")
COMPILED_PACKAGE = "aioecho._core_c"

DIRECTIVES = {
    "language_level": 3,
    # The .pxd files give the types; annotations keep their Python meaning
    # (``float`` would otherwise become a C double, ``int`` an exact int).
    "annotation_typing": False,
    # ``if cython.compiled:`` leaves the other branch unreachable on purpose.
    "warn.unreachable": False,
}


def load_core_package() -> ModuleType:
    """aioecho/_core/__init__.py on its own: which files it compiles, and their digest."""
    path = ROOT / "aioecho" / "_core" / "__init__.py"
    spec = importlib.util.spec_from_file_location("aioecho_core_sources", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def not_built() -> str | None:
    """Why the extensions are not built here, or None to build them."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return f"{DISABLE_VARIABLE} is set"
    if sys.implementation.name != "cpython":
        return "not CPython"
    if importlib.util.find_spec("Cython") is None:
        return "Cython is not installed"
    return None


def copy_core(core: ModuleType) -> list[Path]:
    """The core's sources copied as the package to compile; the modules to compile."""
    package = ROOT / COPY_ROOT / "aioecho" / "_core_c"
    shutil.rmtree(package, ignore_errors=True)
    package.mkdir(parents=True)
    # Packages while compiling, so that Cython names the modules aioecho._core_c.*;
    # neither is installed: aioecho._core_c imports as a namespace package.
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    modules = [package / path.name for path in core.compiled_modules()]
    for path in [*core.compiled_modules(), *core.FOLDER.glob("*.pxd")]:
        shutil.copyfile(path, package / path.name)
    built_from = package / "built_from.py"
    built_from.write_text(
        '"""The digest of the aioecho/_core sources this package was compiled from."""\n\n'
        f"DIGEST = {core.source_digest()!r}\n"
    )
    return [*modules, built_from]


def extension_modules() -> list[Any]:
    """The core's modules as Cython extensions, or none."""
    if (reason := not_built()) is not None:
        print(f"aioecho: pure Python only ({reason})", file=sys.stderr)
        return []
    from Cython.Build import cythonize

    extensions = [
        Extension(f"{COMPILED_PACKAGE}.{path.stem}", [str(path.relative_to(ROOT))])
        for path in copy_core(load_core_package())
    ]
    try:
        built = cythonize(
            extensions,
            compiler_directives=DIRECTIVES,
            include_path=[str(COPY_ROOT)],
            quiet=True,
        )
    except Exception as exc:  # a Cython compile error: the source still runs
        print(f"aioecho: pure Python only (Cython failed: {exc!r})", file=sys.stderr)
        return []
    return list(built)


class OptionalBuildExt(build_ext):
    """Builds the extensions if the C compiler works; otherwise leaves pure Python."""

    def run(self) -> None:
        if self.inplace or self.editable_mode:  # the extensions go beside the sources
            for extension in self.extensions:
                package = extension.name.rpartition(".")[0]
                ROOT.joinpath(*package.split(".")).mkdir(parents=True, exist_ok=True)
        try:
            super().run()
        except BUILD_FAILURES as exc:
            # All or nothing: without built_from, aioecho ignores the others.
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            print(f"aioecho: C extensions not built, pure Python only: {exc}", file=sys.stderr)


setup(ext_modules=extension_modules(), cmdclass={"build_ext": OptionalBuildExt})
