"""The choice between the compiled and the pure-Python build of the hot modules."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aioecho
from aioecho import extensions
from aioecho.extensions import DIGESTS_FILE, HOT_MODULES, fresh_extensions, source_digest

from .support import serve_in_subprocess, stop

# CI sets this where the compiled build must load, so that a build that
# silently fell back to pure Python fails instead of passing unnoticed.
EXPECT_COMPILED = os.environ.get("AIOECHO_EXPECT_COMPILED") == "1"
FORCED_PURE = os.environ.get(extensions.DISABLE_VARIABLE, "") not in ("", "0")
EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

PROBE = (
    "import aioecho, importlib; from aioecho.extensions import HOT_MODULES; "
    "print(aioecho.COMPILED, *(importlib.import_module(m).__file__ for m in HOT_MODULES))"
)


def test_compiled_names_the_modules_in_use() -> None:
    for name in HOT_MODULES:
        origin = importlib.import_module(name).__file__
        assert origin is not None
        assert origin.endswith(".py") is not aioecho.COMPILED, origin


def test_the_expected_build_is_loaded() -> None:
    if FORCED_PURE:
        assert not aioecho.COMPILED
    elif EXPECT_COMPILED:
        assert aioecho.COMPILED, "the compiled extensions did not load: were they built?"
    else:
        pytest.skip("neither AIOECHO_EXPECT_COMPILED=1 nor AIOECHO_NO_EXTENSIONS=1 is set")


@pytest.mark.parametrize("forced_pure", [False, True])
def test_the_startup_line_names_the_build(forced_pure: bool) -> None:
    env = {extensions.DISABLE_VARIABLE: "1"} if forced_pure else {}
    with serve_in_subprocess(env=env) as server:
        code, log = stop(server)
    build = "compiled" if aioecho.COMPILED and not forced_pure else "pure"
    assert code == 0
    assert f"framing=line, build={build})".encode() in log


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


def test_no_extensions_variable_forces_the_source() -> None:
    compiled, *files = probe({extensions.DISABLE_VARIABLE: "1"}).stdout.split()
    assert compiled == "False"
    assert [Path(f).name for f in files] == [f"{m.rsplit('.', 1)[1]}.py" for m in HOT_MODULES]


@pytest.mark.skipif(not aioecho.COMPILED, reason="needs the compiled build")
def test_an_edited_source_is_run_instead_of_its_stale_extension(tmp_path: Path) -> None:
    # A copy of the installed package, extensions and all, whose framing.py
    # changes after the build, as in a development checkout.
    package = Path(aioecho.__file__).parent
    shutil.copytree(package, tmp_path / "aioecho", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "aioecho" / "framing.py").open("a") as source:
        source.write("\nEDITED = True\n")
    result = probe({}, cwd=tmp_path)
    compiled, *files = result.stdout.split()
    assert compiled == "False"
    assert all(f.startswith(str(tmp_path)) and f.endswith(".py") for f in files), files
    assert "aioecho.framing changed" in result.stderr


DEPENDENCY = "aioecho.stats"  # a module the hot ones import, compiled against but not compiled


def fake_build(package: Path) -> None:
    """Sources, extension files and digests laid out as a build leaves them.

    The extension files are never loaded: only their presence is checked.
    """
    for module in (*HOT_MODULES, DEPENDENCY):
        source = package.joinpath(*module.split(".")[1:]).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"NAME = {module!r}\n")
        if module in HOT_MODULES:
            source.with_suffix(EXTENSION_SUFFIX).write_bytes(b"")
    digests = {module: source_digest(module, package) for module in (*HOT_MODULES, DEPENDENCY)}
    (package / DIGESTS_FILE).write_text(json.dumps(digests))


def test_extensions_matching_their_sources_are_used(tmp_path: Path) -> None:
    fake_build(tmp_path)
    found = fresh_extensions(tmp_path)
    assert found is not None
    assert sorted(found) == sorted(HOT_MODULES)
    assert all(path.name.endswith(EXTENSION_SUFFIX) for path in found.values())


def test_no_extensions_means_pure_python_quietly(tmp_path: Path) -> None:
    fake_build(tmp_path)
    for module in HOT_MODULES:
        extensions.source_path(module, tmp_path).with_suffix(EXTENSION_SUFFIX).unlink()
    assert fresh_extensions(tmp_path) is None


def test_one_edited_source_disables_every_extension(tmp_path: Path) -> None:
    fake_build(tmp_path)
    extensions.source_path("aioecho.protocol", tmp_path).write_text("NAME = 'edited'\n")
    with pytest.warns(RuntimeWarning, match=r"aioecho\.protocol changed"):
        assert fresh_extensions(tmp_path) is None


def test_a_missing_extension_disables_the_others(tmp_path: Path) -> None:
    fake_build(tmp_path)
    extensions.source_path("aioecho.framing", tmp_path).with_suffix(EXTENSION_SUFFIX).unlink()
    with pytest.warns(RuntimeWarning, match=r"no extension for aioecho\.framing"):
        assert fresh_extensions(tmp_path) is None


def test_an_edited_dependency_disables_the_extensions(tmp_path: Path) -> None:
    fake_build(tmp_path)
    extensions.source_path(DEPENDENCY, tmp_path).write_text("NAME = 'edited'\n")
    with pytest.warns(RuntimeWarning, match=r"aioecho\.stats changed"):
        assert fresh_extensions(tmp_path) is None


def test_a_deleted_dependency_disables_the_extensions(tmp_path: Path) -> None:
    fake_build(tmp_path)
    extensions.source_path(DEPENDENCY, tmp_path).unlink()
    with pytest.warns(RuntimeWarning, match=r"aioecho\.stats changed"):
        assert fresh_extensions(tmp_path) is None


def test_extensions_without_digests_are_not_trusted(tmp_path: Path) -> None:
    fake_build(tmp_path)
    (tmp_path / DIGESTS_FILE).unlink()
    with pytest.warns(RuntimeWarning, match=r"aioecho\.framing, .* changed"):
        assert fresh_extensions(tmp_path) is None
