"""Names a package exports but imports on first use, so that importing the package stays cheap."""

from __future__ import annotations

import importlib

# Not typing's: importing typing would cost the start of every program that
# imports aioecho, which is what this module is here to spare.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` for the names in ``homes``.

    ``homes`` maps each name to the submodule (relative to ``package``) that
    defines it; the first lookup imports it and keeps the name in
    ``namespace`` (the package's globals), so it is looked up once.
    """

    def __getattr__(name: str) -> Any:
        if name in homes:
            value = getattr(importlib.import_module(f".{homes[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
