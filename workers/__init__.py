"""Entry points of shmpipe's worker processes: an encoder per camera, the stats worker, the preview.

Each runs as `python -m shmpipe_workers.<name> <fd>` (process backend) or as its loop class in a
thread (thread backend); the loop is the same code either way. The folder is `workers/` in the
checkout; an install names it `shmpipe_workers` (pyproject.toml), so its modules import each other
relatively and the recorder finds it through shmpipe.recorder.worker_package.
"""
