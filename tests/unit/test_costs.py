"""``ShortestRuns``: the shortest run of each kind over its last 32-64 runs."""

from __future__ import annotations

import math

from gateway.db.costs import MAX_KINDS, WINDOW, ShortestRuns


def test_unknown_kinds_count_as_long() -> None:
    assert ShortestRuns().shortest("never") == math.inf


def test_the_shortest_recent_run_is_kept() -> None:
    runs = ShortestRuns()
    for seconds in (0.5, 0.002, 0.4):
        runs.record("k", seconds)
    assert runs.shortest("k") == 0.002
    assert runs.shortest("other") == math.inf


def test_an_old_short_run_is_forgotten_after_two_windows() -> None:
    runs = ShortestRuns()
    runs.record("k", 0.001)
    for _ in range(WINDOW - 1):
        runs.record("k", 0.5)
    assert runs.shortest("k") == 0.001  # same half-window
    for _ in range(WINDOW):
        runs.record("k", 0.5)
    assert runs.shortest("k") == 0.001  # the previous half-window still counts
    runs.record("k", 0.5)
    assert runs.shortest("k") == 0.5


def test_the_number_of_kinds_is_bounded() -> None:
    runs = ShortestRuns()
    for i in range(MAX_KINDS + 5):
        runs.record(str(i), 0.001)
    assert len(runs._runs) <= MAX_KINDS
    assert runs.shortest(str(MAX_KINDS + 4)) == 0.001
