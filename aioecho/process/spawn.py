"""Child Python processes of the package, all started one way.

A child is ``python -P -m MODULE``: a fresh interpreter (no fork of a
process with a running loop, no re-import of the parent's ``__main__``, as
multiprocessing's spawn does) that sees the parent's import path and reads
its task, one pickled object, from its stdin. The supervisor's workers and
the harness's client processes start so.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, Protocol


class _Stdin(Protocol):
    def write(self, data: bytes, /) -> Any: ...
    def close(self) -> Any: ...


def command(module: str) -> tuple[str, ...]:
    """The command line of a child running ``module``."""
    # -P: no working directory on the path; the child gets the parent's
    # sys.path instead (environment()), so that it runs the very code the parent runs.
    return (sys.executable, "-P", "-m", module)


def environment() -> dict[str, str]:
    """The parent's environment, with its import path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def start(module: str, task: object, pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """Start a child running ``module`` and hand it ``task``."""
    process = subprocess.Popen(
        command(module), env=environment(), stdin=subprocess.PIPE, pass_fds=pass_fds
    )
    assert process.stdin is not None
    hand_over(process.stdin, task)
    return process


async def start_async(
    module: str, pass_fds: Sequence[int] = (), new_session: bool = False
) -> asyncio.subprocess.Process:
    """Start a child running ``module`` from a running loop; :func:`hand_over` its task next."""
    return await asyncio.create_subprocess_exec(
        *command(module),
        env=environment(),
        stdin=asyncio.subprocess.PIPE,
        pass_fds=pass_fds,
        start_new_session=new_session,
    )


def hand_over(stdin: _Stdin, task: object) -> None:
    """Write ``task`` to a child's stdin, and close it: the child reads to the end."""
    stdin.write(pickle.dumps(task))
    stdin.close()


def received() -> Any:
    """In a child: the task its parent handed over."""
    return pickle.load(sys.stdin.buffer)
