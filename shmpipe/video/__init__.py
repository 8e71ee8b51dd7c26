"""Everything PyAV: codecs and their probe, the episode writer, packet copying, depth storage.

The encoder worker and the dataset tools (verify, pack) share this layer; it knows nothing of
the recorder or the dataset format.
"""
