"""Shared memory between the control process and its workers, and nothing else.

Named segments and their owner lock, doorbells (semaphores), the frame ring, the histogram store
and the latest-row block. No pyarrow, no PyAV: every worker imports this.
"""
