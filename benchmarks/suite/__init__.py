"""The benchmark suite behind ``benchmarks/run.py``: matrix, servers, measuring, report."""
