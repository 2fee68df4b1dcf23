"""The test suite on every supported Python, each in a fresh virtual environment.

``nox`` runs them all; ``nox -s tests-3.12`` one. Each session installs the
package as the README says, ``pip install -e '.[test]'``, which compiles the
core, then runs the suite twice on that one install: on the compiled build,
which must load, and on the pure-Python one (``AIOECHO_NO_EXTENSIONS=1``).
Arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True  # a Python not found fails, never skips
nox.options.sessions = ["tests"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite on the compiled build, then on the pure-Python one."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"AIOECHO_EXPECT_COMPILED": "1"})
    session.run("pytest", *session.posargs, env={"AIOECHO_NO_EXTENSIONS": "1"})
