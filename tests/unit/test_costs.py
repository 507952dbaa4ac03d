"""``RecentRuns``: a moving average of each kind's runs (about the last 16);
``argument_scale``: the part of a kind its arguments make."""

from __future__ import annotations

import datetime as dt
import math
import uuid

from gateway.db.costs import MAX_KINDS, RecentRuns, argument_scale


def test_unknown_kinds_count_as_long() -> None:
    assert RecentRuns().typical("never") == math.inf


def test_the_first_run_sets_the_average_and_later_ones_move_it() -> None:
    runs = RecentRuns()
    runs.record("k", 0.002)
    assert runs.typical("k") == 0.002
    runs.record("k", 0.034)
    assert math.isclose(runs.typical("k"), 0.004)  # 1/16 of the way
    assert runs.typical("other") == math.inf


def test_a_kind_whose_long_runs_are_common_is_not_short() -> None:
    """A statement whose cost depends on its arguments: one run in four
    short (2 ms), the rest long (50 ms)."""
    runs = RecentRuns()
    for i in range(64):
        runs.record("k", 0.002 if i % 4 == 0 else 0.050)
    assert runs.typical("k") > 0.030


def test_a_short_kind_becomes_long_when_its_runs_grow() -> None:
    runs = RecentRuns()
    for _ in range(32):
        runs.record("k", 0.001)
    for _ in range(48):
        runs.record("k", 0.100)
    assert runs.typical("k") > 0.09


def test_the_number_of_kinds_is_bounded() -> None:
    runs = RecentRuns()
    for i in range(MAX_KINDS + 5):
        runs.record(str(i), 0.001)
    assert len(runs._avg) <= MAX_KINDS
    assert runs.typical(str(MAX_KINDS + 4)) == 0.001


def test_kinds_may_be_any_hashable_key() -> None:
    runs = RecentRuns()
    runs.record(("org-a", "sql", (2,)), 0.001)
    assert runs.typical(("org-b", "sql", (2,))) == math.inf


def test_argument_scale_tells_window_spans_and_magnitudes_apart() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    day = now - dt.timedelta(days=1)
    year = now - dt.timedelta(days=366)
    org = uuid.uuid4()
    assert argument_scale([org, day], now) != argument_scale([org, year], now)
    # the same span of other dates, another org: the same scale
    assert argument_scale([org, day], now) == argument_scale([uuid.uuid4(), day], now)
    assert argument_scale([dt.date(2026, 1, 1), dt.date(2026, 1, 2)], now) == argument_scale(
        [year], now
    )
    assert argument_scale([org, 10], now) != argument_scale([org, 500], now)
    assert argument_scale([org, "text", 1.5], now) == argument_scale([org], now)
