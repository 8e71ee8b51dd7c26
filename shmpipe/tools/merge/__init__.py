"""`shmpipe merge`: N LeRobot v3.0 datasets into one, with exact stats, crash-safe."""

from shmpipe.tools.merge.merger import MergeReport as MergeReport
from shmpipe.tools.merge.merger import merge as merge

__all__ = ["MergeReport", "merge"]
