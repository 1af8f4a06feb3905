"""Benchmarks: each module exposes `run() -> str` (a markdown section); `python -m bench.run` runs them."""
