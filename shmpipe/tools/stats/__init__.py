"""`shmpipe stats`: recompute any LeRobot v3.0 dataset's stats exactly, in place."""

from shmpipe.tools.stats.recompute import StatsReport as StatsReport
from shmpipe.tools.stats.recompute import restat as restat

__all__ = ["StatsReport", "restat"]
