"""Benchmarks: tuning quality against peers (``python -m bench run``), scheduler latency, ingest throughput.

Kept import-light: submodules load their own dependencies when used.
"""
