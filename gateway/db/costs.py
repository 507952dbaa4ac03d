"""``RecentRuns``: how long each kind of analytics statement has taken
lately, so that short kinds need not queue for an analytics slot.

A moving average over about the last 16 runs: a statement whose cost
depends on its arguments (a ``since`` far back or recent) counts as long
while its long runs are common, not as short because some runs were. Under
load every run takes longer, so a short kind may cross the limit and queue
until the load eases. A kind first seen has no runs and counts as long.

Must not: know SQL or table names (a key is an opaque string).
"""

from __future__ import annotations

import math

WEIGHT = 1 / 16  # of the newest run in the average
MAX_KINDS = 1024


class RecentRuns:
    __slots__ = ("_avg",)

    def __init__(self) -> None:
        self._avg: dict[str, float] = {}

    def typical(self, key: str) -> float:
        """Seconds a run of ``key`` has taken lately; inf when none ran."""
        return self._avg.get(key, math.inf)

    def record(self, key: str, seconds: float) -> None:
        avg = self._avg.get(key)
        if avg is None:
            if len(self._avg) >= MAX_KINDS:
                self._avg.clear()  # rare: kinds are plans; start over
            self._avg[key] = seconds
            return
        self._avg[key] = avg + WEIGHT * (seconds - avg)
