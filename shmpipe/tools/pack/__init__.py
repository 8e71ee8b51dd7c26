"""`shmpipe pack`: merge per-episode files into LeRobot's size-bounded files for the Hub."""

from shmpipe.tools.pack.packer import PackReport as PackReport
from shmpipe.tools.pack.packer import pack as pack

__all__ = ["PackReport", "pack"]
