"""aioecho as a Locust target (the ``locust`` extra).

In a locustfile::

    from aioecho.locust import EchoUser

    class Echo(EchoUser):
        line_size = 1024

and run ``locust -f locustfile.py --host tcp://127.0.0.1:8088``.

Locust runs on gevent, which monkey-patches the standard library when it is
imported. ``EchoUser`` is therefore loaded on first use, so that importing
:mod:`aioecho`, or this package for :mod:`aioecho.locust.wire`, never brings
gevent into a process that did not ask for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .user import EchoUser

__all__ = ["EchoUser"]


def __getattr__(name: str) -> object:
    if name == "EchoUser":
        from .user import EchoUser

        return EchoUser
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
