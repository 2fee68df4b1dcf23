"""The process layer: running the echo service as a program.

One lifecycle serves one process and a supervised pool alike: start (rolled
back if any part fails), announce readiness, wait for SIGINT or SIGTERM,
stop gracefully. Imports flow downward in this list, never up:

``runner``      the blocking entry point, :func:`run_server`
``supervisor``  N worker processes as one service: bind, observe, start and stop the pool
``pool``        the worker processes: spawn, watch, restart, sum their counters
``backoff``     when to restart a worker that exited
``watchdog``    deadlines by which the workers must report, on the supervisor's clock
``worker``      the entry of one worker process (``python -m aioecho.process.worker``)
``child``       a server in a child process for the harness, the suite and the tests
``spawn``       how every child of the package starts: python -P -m MODULE, its task on stdin
``launch``      start ``python -m aioecho`` in a child and wait until it is ready
``single``      one in-process :class:`~aioecho.EchoServer` as a service
``allocator``   a serving process's large buffers mapped on their own, so freed ones go back
``lifecycle``   start, announce, wait for a signal, stop: the one sequence
``signals``     stop signals, with the previous handlers restored afterwards
``early``       stop signals caught from a program's first line until ``signals`` takes over
``readiness``   what a ready service announces: log lines, a JSON line
``status``      the worker-to-supervisor status pipe and its record format
``spec``        what the supervisor tells a worker it starts
``logs``        log format of the command line and its workers
"""
