"""Every async test runs twice: on the stdlib loop and on uvloop."""

from __future__ import annotations

import asyncio
import compileall
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvloop

from .support import Certificates, ChildServer, issue_certificates, serve_in_subprocess

if TYPE_CHECKING:
    # Imported by pytest_plugins below, not here: pytest rewrites a plugin's asserts on import.
    pass

# The package's plugin is active through its entry point already; listing it
# keeps the suite working with plugin autoloading off, and registers nothing twice.
pytest_plugins = ["aioecho.pytest_plugin"]


ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Let the suite's processes keep their bytecode, even where PYTHONDONTWRITEBYTECODE is set.

    Without it, each of the hundreds of processes the suite starts would
    compile every module of the package again (a quarter of its start-up),
    and each test worker would rewrite the asserts of every test module again
    (a second of CPU). An installed package has its bytecode from pip; a
    checkout gets it here, compiled once before the workers start.
    """
    if hasattr(config, "workerinput"):  # a worker: the controller did it
        return
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for every process started from here
    for folder in ("aioecho", "benchmarks"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: three per core.

    Many tests wait on subprocesses, sockets and timeouts rather than
    compute, so one worker per core would leave the cores idle part of the
    time. On 2 cores the suite took 63 s with 3 workers, 55 s with 4, and
    49-52 s with 6 or 8.
    """
    return 3 * (os.cpu_count() or 1)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def loop_name() -> str:
    """Which kind of loop the current test runs on."""
    loop: Any = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA's server certificate for 127.0.0.1, ::1 and localhost, and another CA."""
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def echo_process() -> Iterator[ChildServer]:
    """One aioecho in a child process for the runs that need a target, not their own."""
    with serve_in_subprocess() as server:
        yield server
