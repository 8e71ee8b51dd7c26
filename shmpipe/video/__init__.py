"""Everything PyAV: codecs and their probe, the episode writer, packet copying, video settings.

The encoder worker and the dataset tools (verify, pack) share this layer; it knows nothing of
the recorder or the dataset format.
"""
