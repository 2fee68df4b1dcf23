"""Tests that need an extra beyond ``test``: skipped, naming the extra, where it is absent.

``pip install -e '.[test]'`` installs what the package's own tests need. The
benchmark suite's plots (the ``report`` extra), the other frameworks' servers
it measures (``frameworks``) and Locust (``locust``) are heavy and optional:
their tests skip where the extra is not installed. With
``AIOECHO_REQUIRE_EXTRAS=1``, as CI sets it, a missing extra fails the run
instead, so that no test is skipped unnoticed.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRE_VARIABLE = "AIOECHO_REQUIRE_EXTRAS"


def missing(extra: str, *modules: str) -> str | None:
    """Why the tests of ``extra`` cannot run here, or None where its ``modules`` are installed.

    Raises ImportError instead where ``AIOECHO_REQUIRE_EXTRAS=1`` forbids the skip.
    """
    # find_spec, not an import: importing Locust imports gevent, which patches the stdlib.
    absent = [module for module in modules if importlib.util.find_spec(module) is None]
    if not absent:
        return None
    reason = f"the {extra} extra is not installed (no {', '.join(absent)})"
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        raise ImportError(f"{reason}: pip install -e '.[test,{extra}]' ({REQUIRE_VARIABLE}=1)")
    return reason


def needs(extra: str, *modules: str) -> pytest.MarkDecorator:
    """A mark skipping a test where ``extra`` is not installed."""
    reason = missing(extra, *modules)
    return pytest.mark.skipif(reason is not None, reason=reason or "")
