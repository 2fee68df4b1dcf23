"""The per-read core: the server's framing, backpressure, fairness turn, error path and
accounting, and the load harness's read, verify, time, record and send.

This folder imports nothing outside itself, and it is what the build
compiles: with Cython, each module from its ``.py`` and the ``.pxd`` beside
it, which types its state as C fields and adds the C it runs per read. The
compiled copy is the package ``aioecho._core_c``; ``aioecho.core`` says which
of the two this process runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FOLDER = Path(__file__).resolve().parent

NOT_COMPILED = ("__init__.py", "nocython.py")
"""This package's own file, and the stand-in for Cython that compiled code never imports."""


def compiled_modules(folder: Path = FOLDER) -> list[Path]:
    """The ``.py`` files the build compiles."""
    return sorted(path for path in folder.glob("*.py") if path.name not in NOT_COMPILED)


def source_digest(folder: Path = FOLDER) -> str:
    """One digest of every ``.py`` and ``.pxd`` file of the folder, names and contents."""
    digest = hashlib.sha256()
    for path in sorted([*folder.glob("*.py"), *folder.glob("*.pxd")]):
        digest.update(b"%s\0%d\0" % (path.name.encode(), path.stat().st_size))
        digest.update(path.read_bytes())
    return digest.hexdigest()
