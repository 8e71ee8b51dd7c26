"""Statistics, pure numpy: downsampled image histograms, exact column stats, quantiles.

The stats worker and the dataset writer compute stats with the same functions here.
"""
