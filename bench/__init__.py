"""Benchmarks for trialmgr: `make bench` (see bench/__main__.py)."""
