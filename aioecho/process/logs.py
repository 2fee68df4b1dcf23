"""Log format of the command line and of its worker processes."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: int | str, prefix: str = "") -> None:
    """Log lines to stderr as the service writes them; ``prefix`` names a worker."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s %(name)s: {prefix}%(message)s",
        stream=sys.stderr,
    )
