"""The suite behind ``python -m benchmarks matrix``: matrix, servers, measuring, report."""
