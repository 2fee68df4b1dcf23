"""Optional features and the extras that install them.

Whatever needs an extra imports it through :func:`import_extra`, so that a
missing one is reported the same way everywhere: a
:class:`MissingExtraError` that names the feature and the ``pip install``
that brings it. The command line turns it into one line and exit code 2.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """A feature was asked for whose extra is not installed."""


def import_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, which ``feature`` needs and ``aioecho[extra]`` installs.

    Raises :class:`MissingExtraError` when it cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the {extra} extra ({module} is not installed): "
            f"pip install 'aioecho[{extra}]'"
        ) from exc
