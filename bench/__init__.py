"""Benchmarks of the issues' performance targets (`make bench`, or `python -m bench NAME`).

`district` writes synthetic ONDE extractions; `import_bench` measures the roster import against
a naive baseline; `bot_load` drives the bot through the local Bot API server. Figures and how
they were measured: `bench/RESULTS.md`.
"""
