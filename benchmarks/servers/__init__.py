"""The baseline servers of the suite, each a module: ``python -m benchmarks.servers.NAME``."""
