"""A missing extra: one line naming what to install, exit code 2, from every command.

Each case runs ``python -m aioecho`` with the extra's module made
unimportable (``sys.modules[name] = None``), as on a machine without it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

WITHOUT = """
import runpy, sys
sys.modules[sys.argv[1]] = None  # import fails, as where it is not installed
sys.argv = ["aioecho", *sys.argv[2:]]
runpy.run_module("aioecho", run_name="__main__", alter_sys=True)
"""


def run_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, module, *args],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def installing(extra: str) -> str:
    return f"pip install 'aioecho[{extra}]'"


@pytest.mark.parametrize(
    ("module", "args", "line"),
    [
        (
            "hdrh",
            ["bench", "--duration", "1"],
            "aioecho bench: error: the load harness needs the bench extra "
            f"(hdrh is not installed): {installing('bench')}",
        ),
        (
            "prometheus_client",
            ["serve", "--port", "0", "--metrics-port", "0"],
            "aioecho serve: error: --metrics-port needs the metrics extra "
            f"(prometheus_client is not installed): {installing('metrics')}",
        ),
        (
            "uvloop",
            ["--port", "0", "--loop", "uvloop"],
            "aioecho serve: error: the uvloop event loop needs the uvloop extra "
            f"(uvloop is not installed): {installing('uvloop')}",
        ),
        (
            "uvloop",
            ["client", "--loop", "uvloop"],
            "aioecho client: error: the uvloop event loop needs the uvloop extra "
            f"(uvloop is not installed): {installing('uvloop')}",
        ),
        (
            "uvloop",
            ["bench", "--server-loop", "uvloop"],
            "aioecho bench: error: the uvloop event loop needs the uvloop extra "
            f"(uvloop is not installed): {installing('uvloop')}",
        ),
    ],
)
def test_a_missing_extra_is_one_line_and_exit_2(module: str, args: list[str], line: str) -> None:
    done = run_without(module, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [line]


def test_the_library_raises_it_as_an_import_error() -> None:
    code = (
        "import sys; sys.modules['hdrh'] = None\n"
        "from aioecho.extras import MissingExtraError\n"
        "try:\n"
        "    from aioecho.bench import run\n"
        "except MissingExtraError as exc:\n"
        "    assert isinstance(exc, ImportError)\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith(installing("bench"))
