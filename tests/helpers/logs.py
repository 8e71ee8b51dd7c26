"""What shmpipe logged."""

from __future__ import annotations

import logging


def shmpipe_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and (r.name == "shmpipe" or r.name.startswith("shmpipe."))
    ]
