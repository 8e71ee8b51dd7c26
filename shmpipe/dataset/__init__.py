"""The one owner of the LeRobot v3.0 format on disk: layout, info.json, meta tables, rows,
the writer, dataset stats, a reader, and the pack journal.

Other layers name paths, columns and feature kinds through this package only.
"""
