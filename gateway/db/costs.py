"""``RecentRuns``: how long each kind of analytics statement has taken
lately, so that short kinds need not queue for an analytics slot; and
``argument_scale``, the part of a kind its arguments make.

A kind is what a run's cost depends on, as far as the caller can tell
before running it: the statement, the org it runs for (``Database`` adds
that), and the scale of its arguments (``argument_scale``: the span of its
time window and the magnitude of its numbers, in powers of two), so that a
cheap run of a 1-day window says nothing of a 366-day one, and one org's
cheap runs say nothing of another's.

A moving average over about the last 16 runs: a statement whose cost
depends on its data counts as long while its long runs are common, not as
short because some runs were. Under load every run takes longer, so a short kind may cross
the limit and queue until the load eases. A kind first seen has no runs and
counts as long.

Must not: know SQL or table names (a key is opaque).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Iterable

WEIGHT = 1 / 16  # of the newest run in the average
MAX_KINDS = 4096


class RecentRuns:
    __slots__ = ("_avg",)

    def __init__(self) -> None:
        self._avg: dict[Hashable, float] = {}

    def typical(self, key: Hashable) -> float:
        """Seconds a run of ``key`` has taken lately; inf when none ran."""
        return self._avg.get(key, math.inf)

    def record(self, key: Hashable, seconds: float) -> None:
        avg = self._avg.get(key)
        if avg is None:
            if len(self._avg) >= MAX_KINDS:
                self._avg.clear()  # rare: every kind counts as long again
            self._avg[key] = seconds
            return
        self._avg[key] = avg + WEIGHT * (seconds - avg)


def argument_scale(values: Iterable[object], now: dt.datetime | None = None) -> tuple[int, ...]:
    """The scale of a statement's arguments, as far as it bounds the work:
    the span its dates and times cover up to now (whole days, rounded up to
    a power of two), then each integer's bit length. Other values (ids,
    text, floats) do not enter."""
    times: list[float] = []
    ints: list[int] = []
    for v in values:
        if isinstance(v, dt.datetime):
            times.append((v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp())
        elif isinstance(v, dt.date):
            times.append(dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC).timestamp())
        elif isinstance(v, int) and not isinstance(v, bool):
            ints.append(abs(v).bit_length())
    if not times:
        return (0, *ints)
    current = (now or dt.datetime.now(dt.UTC)).timestamp()
    days = math.ceil((max(max(times), current) - min(times)) / 86_400)
    return (max(days, 0).bit_length() + 1, *ints)
