"""What a service announces once it accepts: log lines for people, one JSON line for programs.

The JSON line is what launchers wait for (``--ready-fd N``, ``--ready-file
PATH``) instead of reading the log::

    {"pid": 4242, "addresses": [["127.0.0.1", 8088]], "unix": null,
     "metrics": [["127.0.0.1", 9100]], "workers": 1, "loop": "uvloop",
     "framing": "line", "tls": false}

``pid`` is the process to signal to stop the service (the supervisor when
there are workers); ``addresses`` are the bound TCP addresses, real ports
included (empty with ``unix``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from ..config import ServerConfig
from ..core import COMPILED
from ..sockets.binding import Address, format_address

logger = logging.getLogger("aioecho")


@dataclass(frozen=True)
class Readiness:
    """Where a ready service accepts, and how it serves."""

    pid: int
    addresses: tuple[Address, ...]
    unix: str | None
    metrics: tuple[Address, ...]
    workers: int
    loop: str
    framing: str
    tls: bool

    @classmethod
    def of(
        cls,
        config: ServerConfig,
        addresses: list[Address],
        metrics: list[Address],
        loop: str,
    ) -> Readiness:
        """The readiness of a service with ``config`` bound at these addresses."""
        return cls(
            pid=os.getpid(),
            addresses=tuple(addresses),
            unix=config.unix,
            metrics=tuple(metrics),
            workers=config.workers,
            loop=loop,
            framing=config.framing,
            tls=config.tls_cert is not None,
        )

    @property
    def details(self) -> str:
        """``loop=…, framing=…, build=…`` and what else sets the service apart."""
        build = "compiled" if COMPILED else "pure"
        details = f"loop={self.loop}, framing={self.framing}, build={build}"
        details += ", tls" if self.tls else ""
        return details + (f", workers={self.workers}" if self.workers > 1 else "")

    @property
    def where(self) -> str:
        """Where it listens, for people."""
        if self.unix is not None:
            return f"unix:{self.unix}"
        return ", ".join(format_address(address) for address in self.addresses)

    def log(self) -> None:
        """Log where the service accepts, and where its metrics are."""
        logger.info("serving on %s (%s)", self.where, self.details)
        for address in self.metrics:
            logger.info("metrics on http://%s/metrics", format_address(address))

    def to_json(self) -> str:
        """The announcement as one line of JSON, without the newline."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str | bytes) -> Readiness:
        """The announcement ``to_json`` wrote."""
        fields: dict[str, Any] = json.loads(line)
        for name in ("addresses", "metrics"):
            fields[name] = tuple((host, port) for host, port in fields[name])
        return cls(**fields)


@dataclass(frozen=True)
class ReadyReport:
    """Where the command line writes the JSON line once the service is ready."""

    file: str | None = None
    """A path, written whole (a reader never sees half a line)."""
    fd: int | None = None
    """A descriptor inherited from the launcher, written and closed."""

    def publish(self, readiness: Readiness) -> None:
        """Write the JSON line to the file and the descriptor that were asked for."""
        line = readiness.to_json() + "\n"
        if self.file is not None:
            write_whole(self.file, line)
        if self.fd is not None:
            with open(self.fd, "w", closefd=True) as pipe:
                pipe.write(line)


def write_whole(path: str, text: str) -> None:
    """Make ``path`` hold ``text``, by renaming a complete private file onto it.

    The file is new and ours alone: :func:`tempfile.mkstemp` creates it with
    O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, under an unpredictable name in the
    same directory, so that in a shared directory a symlink or a file planted
    by someone else is never written through or reused. The rename replaces
    the name ``path``, never what a symlink there points to.
    """
    folder, name = os.path.split(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
