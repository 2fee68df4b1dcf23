"""``python -m benchmarks speed``: aioecho's CPU per round trip against the floor and against C."""
