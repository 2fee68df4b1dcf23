"""Where a result came from: the schema, the tool, the machine, the command.

A result kept in a file is compared with others months later: it has to say
which version of the harness made it (and from which commit, when run from
a checkout), on what machine, when, and with what command line.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The JSON's shape: raised whenever a field changes meaning or goes away
# (adding one does not). result.schema.json describes this version.
SCHEMA_VERSION = 2
GIT_TIMEOUT_S = 2.0


def provenance(command: Sequence[str] | None = None) -> dict[str, Any]:
    """The fields that say where a result came from, started now."""
    from .. import COMPILED, __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {
            "name": "aioecho",
            "version": __version__,
            "commit": source_commit(),
            "build": "compiled" if COMPILED else "pure",
        },
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "hostname": socket.gethostname(),
            "system": platform.system(),
            "release": platform.release(),
            "architecture": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "command": None if command is None else list(command),
    }


def source_commit() -> str | None:
    """The git commit the running package was imported from, if a checkout."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
