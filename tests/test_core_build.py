"""The core, compiled or as its sources: which runs, and that a stale build never does."""

from __future__ import annotations

import ast
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aioecho
from aioecho import _core, core

from .support import serve_in_subprocess, stop

# CI sets this where the compiled build must load, so that a build that
# silently fell back to pure Python fails instead of passing unnoticed.
EXPECT_COMPILED = os.environ.get("AIOECHO_EXPECT_COMPILED") == "1"
FORCED_PURE = os.environ.get(core.DISABLE_VARIABLE, "") not in ("", "0")
EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

PROBE = (
    "import sys; hooks = len(sys.meta_path); import aioecho; from aioecho import core; "
    "assert len(sys.meta_path) == hooks, 'import aioecho changed sys.meta_path'; "
    "print(aioecho.COMPILED, *(getattr(core, m).__file__ for m in core.MODULES))"
)


def probe(env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """What a fresh interpreter imports, in ``cwd`` (first on its path), with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )


def test_compiled_names_the_modules_in_use() -> None:
    for name in core.MODULES:
        origin = getattr(core, name).__file__
        assert origin is not None
        assert origin.endswith(EXTENSION_SUFFIX) is aioecho.COMPILED, origin
        assert (f"{core.COMPILED_PACKAGE}." in getattr(core, name).__name__) is aioecho.COMPILED


def test_the_expected_build_is_loaded() -> None:
    if FORCED_PURE:
        assert not aioecho.COMPILED
    elif EXPECT_COMPILED:
        assert aioecho.COMPILED, "the compiled core did not load: was it built?"
    else:
        pytest.skip("neither AIOECHO_EXPECT_COMPILED=1 nor AIOECHO_NO_EXTENSIONS=1 is set")


@pytest.mark.parametrize("forced_pure", [False, True])
def test_the_startup_line_names_the_build(forced_pure: bool) -> None:
    env = {core.DISABLE_VARIABLE: "1"} if forced_pure else {}
    with serve_in_subprocess(env=env) as server:
        code, log = stop(server)
    # The build a child started as the server was imports, which need not be
    # this process's: from an unpacked sdist installed with `pip install .`,
    # pytest runs the installed package, its children the sources beside them.
    compiled, *_ = probe(env).stdout.split()
    build = "compiled" if compiled == "True" else "pure"
    assert code == 0
    assert f"framing=line, build={build})".encode() in log


def test_importing_aioecho_installs_no_import_hook() -> None:
    compiled, *files = probe({}).stdout.split()
    assert all(f.endswith(EXTENSION_SUFFIX) for f in files) is (compiled == "True"), files


def test_no_extensions_variable_forces_the_source() -> None:
    compiled, *files = probe({core.DISABLE_VARIABLE: "1"}).stdout.split()
    assert compiled == "False"
    assert [Path(f).name for f in files] == [f"{m}.py" for m in core.MODULES]
    assert all(Path(f).parent.name == "_core" for f in files)


def installed_copy(tmp_path: Path) -> Path:
    """A copy of the installed package, compiled core and all, as a checkout holds it."""
    package = Path(aioecho.__file__).parent
    shutil.copytree(package, tmp_path / "aioecho", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "aioecho"


@pytest.mark.skipif(not aioecho.COMPILED, reason="needs the compiled build")
def test_an_edited_source_runs_instead_of_its_stale_compiled_copy(tmp_path: Path) -> None:
    with (installed_copy(tmp_path) / "_core" / "framing.py").open("a") as source:
        source.write("\nEDITED = True\n")
    result = probe({}, cwd=tmp_path)
    compiled, *files = result.stdout.split()
    assert compiled == "False"
    assert all(f.startswith(str(tmp_path)) and f.endswith(".py") for f in files), files
    assert "compiled from other sources" in result.stderr


@pytest.mark.skipif(not aioecho.COMPILED, reason="needs the compiled build")
def test_a_compiled_module_missing_runs_the_sources(tmp_path: Path) -> None:
    compiled_copy = installed_copy(tmp_path) / "_core_c"
    next(compiled_copy.glob(f"protocol{EXTENSION_SUFFIX}")).unlink()
    result = probe({}, cwd=tmp_path)
    assert result.stdout.split()[0] == "False"
    assert "not loadable" in result.stderr


def core_files(folder: Path) -> None:
    """A core folder in miniature, as the digest sees it."""
    folder.mkdir()
    for name in ("__init__.py", "nocython.py", "protocol.py", "protocol.pxd", "framing.py"):
        (folder / name).write_text(f"# {name}\n")


@pytest.mark.parametrize(
    "edit",
    [
        lambda folder: (folder / "protocol.py").write_text("# edited\n"),
        lambda folder: (folder / "protocol.pxd").write_text("# edited\n"),
        lambda folder: (folder / "added.py").write_text(""),
        lambda folder: (folder / "framing.py").unlink(),
        lambda folder: (folder / "framing.py").rename(folder / "framings.py"),
    ],
    ids=["source", "types", "added", "removed", "renamed"],
)
def test_the_digest_covers_every_source_and_type_file(tmp_path: Path, edit: object) -> None:
    folder = tmp_path / "core"
    core_files(folder)
    before = _core.source_digest(folder)
    assert callable(edit)
    edit(folder)
    assert _core.source_digest(folder) != before


def test_the_digest_ignores_what_is_not_a_source(tmp_path: Path) -> None:
    folder = tmp_path / "core"
    core_files(folder)
    before = _core.source_digest(folder)
    (folder / "__pycache__").mkdir()
    (folder / "notes.txt").write_text("")
    assert _core.source_digest(folder) == before


def test_every_module_but_the_package_and_the_cython_stand_in_is_compiled(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "core"
    core_files(folder)
    assert [path.name for path in _core.compiled_modules(folder)] == ["framing.py", "protocol.py"]


def imported_names(source: Path) -> list[tuple[int, str]]:
    """Each import of ``source`` as (relative level, module name)."""
    tree = ast.parse(source.read_text(), str(source))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_the_core_imports_nothing_of_aioecho_outside_itself() -> None:
    outside = [
        (path.name, level, name)
        for path in sorted(_core.FOLDER.glob("*.py"))
        for level, name in imported_names(path)
        if level > 1 or (level == 0 and name.split(".")[0] == "aioecho")
    ]
    assert outside == []
    stdlib_or_cython = set(sys.stdlib_module_names) | {"cython", "__future__"}
    absolute = {
        name.split(".")[0]
        for path in _core.FOLDER.glob("*.py")
        for level, name in imported_names(path)
        if level == 0
    }
    assert absolute <= stdlib_or_cython, absolute - stdlib_or_cython
