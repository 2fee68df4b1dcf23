"""The servers ``speed`` compares: the C server, the minimal protocol and aioecho's builds."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass

from ..core import cprograms
from ..core.servers import HOST, ServerSpec, aioecho, baseline

NO_EXTENSIONS = {"AIOECHO_NO_EXTENSIONS": "1"}
C_SERVER = "C server"


@dataclass(frozen=True)
class ProgramSpec(ServerSpec):
    """A server that is a program of its own rather than a Python script.

    The C server takes ``-h``/``-p`` and listens with a queue of 4096, the
    suite's backlog.
    """

    @property
    def command(self) -> list[str]:
        return [*self.args, "-h", HOST, "-p", "0"]


@dataclass(frozen=True)
class Contender:
    """A server of the comparison, and the minimal protocol it is held against."""

    spec: ServerSpec
    floor: str | None  # the name of the minimal protocol on the same loop


def minimal(loop: str) -> ServerSpec:
    """The least a Python asyncio server can do, on ``loop``."""
    return baseline(
        f"minimal {loop}", f"minimal protocol, {loop}", "minimal_protocol", "--loop", loop
    )


def c_server() -> ProgramSpec:
    """The C reference server of benchmarks/c."""
    return ProgramSpec(C_SERVER, "C epoll server", (str(cprograms.SERVER),))


def aioecho_builds() -> tuple[list[tuple[str, dict[str, str]]], str]:
    """The builds of aioecho to compare (a label and the environment of each), and
    a sentence saying what ``aioecho.COMPILED`` showed in a child process."""
    installed, forced = compiled_flag({}), compiled_flag(NO_EXTENSIONS)
    if installed == "missing":
        return [("", {})], (
            "aioecho has no COMPILED attribute: one build only (AIOECHO_NO_EXTENSIONS=1 "
            "would run the same code), measured once"
        )
    if installed != "True":
        return [("", {})], (
            "aioecho.COMPILED is False: no compiled build here, so AIOECHO_NO_EXTENSIONS=1 "
            "runs the same pure-Python code, measured once"
        )
    note = "aioecho.COMPILED is True; with AIOECHO_NO_EXTENSIONS=1 it is " + forced
    if forced != "False":
        note += " (the variable did not force pure Python)"
    return [(" compiled", {}), (" pure", NO_EXTENSIONS)], note


def compiled_flag(env: dict[str, str]) -> str:
    """``aioecho.COMPILED`` as a child process with ``env`` sees it: True, False or missing."""
    probe = "import aioecho; print(getattr(aioecho, 'COMPILED', 'missing'))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return done.stdout.strip()


def contenders() -> tuple[list[Contender], str]:
    """Every server of the comparison, C first, and the note on aioecho's builds."""
    builds, note = aioecho_builds()
    chosen = [
        Contender(c_server(), None),
        Contender(minimal("uvloop"), None),
        Contender(minimal("asyncio"), None),
    ]
    for loop in ("uvloop", "asyncio"):
        base = aioecho(f"aioecho {loop}", f"aioecho, {loop}", ("--loop", loop))
        for label, env in builds:
            spec = dataclasses.replace(base, name=f"aioecho {loop}{label}", env=env)
            chosen.append(Contender(spec, f"minimal {loop}"))
    return chosen, note
