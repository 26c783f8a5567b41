"""A fixed, already finished morning shift for tests that simulate trucks: a window that starts at
the same time of day on every run, so the trip count does not depend on whether the test happens
to run across a crib break."""

from __future__ import annotations

import datetime
import time

SHIFT_HOUR_UTC = 7
"""07:00-11:00 UTC holds no break of provenance.domain.trips.BREAKS_UTC for shifts up to 4 h."""


def finished_shift_start(hours: float) -> int:
    """The latest 07:00 UTC from which a shift of `hours` is over by now (loads in the future are
    refused by the chain)."""
    now = int(time.time())
    day = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(
        hour=SHIFT_HOUR_UTC, minute=0, second=0, microsecond=0
    )
    start = int(day.timestamp())
    if start + hours * 3600 > now - 60:
        start -= 86_400
    return start
