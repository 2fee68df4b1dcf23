"""aioecho's benchmarks, one package: ``python -m benchmarks COMMAND`` from the repository root.

``matrix`` runs the suite of servers and loads (:mod:`benchmarks.suite`),
``speed`` guards aioecho's CPU per round trip (:mod:`benchmarks.speed`),
``abuse`` runs the abuse scenarios (:mod:`benchmarks.scenarios`); what they
share (arguments, servers in child processes, the machine, Markdown tables)
is :mod:`benchmarks.core`. See benchmarks/README.md.
"""
