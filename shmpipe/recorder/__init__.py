"""The control process: Pipeline, frame input, camera feeds and their backlog, the session
that owns shared resources, and the supervisor of the workers.
"""
