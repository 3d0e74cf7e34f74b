"""Benchmarks: ``make bench`` (``python -m benchmarks``) prints every figure in one table."""
