"""What shmpipe asks of the operating system besides shared memory: thread scheduling priorities.

Workers and the recorder both use it; it imports nothing else of shmpipe but its errors.
"""
