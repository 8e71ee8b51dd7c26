"""The command line: `shmpipe record`, `verify`, `pack` and `demo`, and the camera sources.

Tools sit on top: they use the recorder and the dataset, nothing below imports them.
"""
