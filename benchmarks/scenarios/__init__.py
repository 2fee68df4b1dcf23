"""Abuse scenarios against an aioecho server: ``python -m benchmarks abuse``."""
