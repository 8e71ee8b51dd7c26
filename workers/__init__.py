"""Entry points of shmpipe's worker processes (one encoder per camera, one stats worker).

Each runs as `python -m workers.<name> <fd>` (process backend) or as `run(conn)` in a thread
(thread backend); the loop is the same code either way.
"""
