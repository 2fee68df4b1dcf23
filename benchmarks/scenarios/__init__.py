"""Abuse scenarios against an aioecho server: ``python benchmarks/abuse.py``."""
