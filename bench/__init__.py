"""Benchmarks for shmpipe: the seed's before/after table reproduced on the user's own machine.

`python -m bench.scenario` runs shmpipe (process and thread backends), the PNG "before" pipeline
and the raw encoder limit side by side on the same synthetic camera frames.
"""
