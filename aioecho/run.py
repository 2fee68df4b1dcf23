"""``aioecho.run.run_server``, the blocking entry point's first documented home.

The process layer lives in :mod:`aioecho.process`; use :func:`aioecho.run_server`.
"""

from .process.runner import run_server

__all__ = ["run_server"]
