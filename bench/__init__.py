"""Benchmarks of the gateway: overhead and upstream economy as ratios against baselines.

Not tests: run on demand with ``make bench`` (or ``python -m bench``). See ``bench/run.py``.
"""
