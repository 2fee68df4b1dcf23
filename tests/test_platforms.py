"""aioecho on a platform without the POSIX-only modules: the package and its
pytest plugin (loaded into every test run where aioecho is installed) must
import, so that installing aioecho never breaks anyone's test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# What Windows lacks that aioecho uses somewhere; None in sys.modules makes
# any import of them fail as it would there.
POSIX_ONLY = ("fcntl", "termios", "resource", "pty", "grp", "pwd")
BLOCK = f"import sys\nfor name in {POSIX_ONLY!r}:\n    sys.modules[name] = None\n"


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_the_package_imports_without_posix_only_modules(tmp_path: Path) -> None:
    done = run(
        "import aioecho, aioecho.pytest_plugin, aioecho.bench, aioecho.client\n"
        "print(aioecho.EchoServer.__name__, aioecho.COMPILED)",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("EchoServer ")


def test_an_unrelated_test_run_passes_with_the_plugin_loaded(tmp_path: Path) -> None:
    (tmp_path / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    done = run(
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'aioecho.pytest_plugin',"
        " 'test_unrelated.py']))",
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_open_file_limit_says_why_it_cannot_be_read(tmp_path: Path) -> None:
    done = run(
        "from aioecho.sockets.limits import raise_open_file_limit\n"
        "try:\n    raise_open_file_limit()\n"
        "except OSError as exc:\n    print(exc)\n",
        tmp_path,
    )
    assert done.stdout.strip() == "the open-file limit is POSIX-only (no resource module here)"
