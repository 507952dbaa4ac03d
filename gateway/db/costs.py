"""``ShortestRuns``: how long each kind of analytics statement takes at best
lately, so that short statements need not queue for an analytics slot.

The shortest run of a recent window, not an average: under load every
statement runs longer, but a statement that is cheap by itself still finishes
quickly now and then, while a database-bound one never does. A kind first
seen has no runs and counts as long.

Must not: know SQL or table names (a key is an opaque string).
"""

from __future__ import annotations

import math

WINDOW = 32  # runs per half-window: the shortest is over the last 32-64 runs
MAX_KINDS = 1024


class ShortestRuns:
    __slots__ = ("_runs",)

    def __init__(self) -> None:
        # key -> [shortest of this half-window, shortest of the previous, runs in this one]
        self._runs: dict[str, list[float]] = {}

    def shortest(self, key: str) -> float:
        """Seconds of the shortest recent run of ``key``; inf when none."""
        entry = self._runs.get(key)
        return math.inf if entry is None else min(entry[0], entry[1])

    def record(self, key: str, seconds: float) -> None:
        entry = self._runs.get(key)
        if entry is None:
            if len(self._runs) >= MAX_KINDS:
                self._runs.clear()  # rare: kinds are plans; start over
            self._runs[key] = [seconds, math.inf, 1.0]
            return
        if entry[2] >= WINDOW:
            entry[1], entry[0], entry[2] = entry[0], seconds, 1.0
            return
        entry[0] = min(entry[0], seconds)
        entry[2] += 1
