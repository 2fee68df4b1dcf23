"""The servers of the matrix: aioecho on both loops and with two workers, and the baselines."""

from __future__ import annotations

from ..core.servers import ServerSpec, aioecho, baseline

TRIO = ("--backend", "trio")

SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        aioecho("aioecho-uvloop", "aioecho, uvloop", ("--loop", "uvloop")),
        aioecho("aioecho-asyncio", "aioecho, stdlib asyncio loop", ("--loop", "asyncio")),
        aioecho(
            "aioecho-workers2",
            "aioecho --workers 2, uvloop",
            ("--workers", "2", "--loop", "uvloop"),
            processes=2,
            needs_flag="--workers",
        ),
        *(
            baseline(name, description, *module_and_flags)
            for name, description, *module_and_flags in (
                ("streams", "asyncio.start_server + readline()", "streams_readline"),
                ("selectors", "tutorial's selectors callbacks (epoll)", "selectors_callbacks"),
                ("select", "tutorial's select.select loop", "select_loop"),
                ("poll", "select.poll loop", "poll_loop"),
                ("epoll", "select.epoll loop, level-triggered", "epoll_loop"),
                ("trio", "trio serve_listeners, a task per connection", "trio_server"),
                ("anyio-asyncio", "anyio receive_until, asyncio backend", "anyio_server"),
                ("anyio-trio", "anyio receive_until, trio backend", "anyio_server", *TRIO),
                ("gevent", "gevent StreamServer, a greenlet per connection", "gevent_server"),
                ("twisted", "Twisted LineReceiver, epoll reactor", "twisted_server"),
                ("threads", "socketserver.ThreadingTCPServer", "threads"),
            )
        ),
    )
}
