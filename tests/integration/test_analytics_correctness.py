"""Every analytics figure, read through a real ``Database`` session on the
replicas, equals an independent computation over the raw rows read as the
owner (``analytics_expected``). Percentiles to 1e-6 relative.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from gateway.data import analytics as fleet_sql
from gateway.data import analytics_quality as quality_sql
from gateway.data import analytics_telemetry as tel
from gateway.db import Database
from gateway.errors import BadUserInput
from tests.support.analytics_data import Fleet, db, fleets, now_utc, session
from tests.support.analytics_expected import (
    as_dt,
    daily,
    fleet_stats,
    forecast,
    quality,
    risk,
    series,
    stats,
)

METRICS = list(tel.METRIC_COLUMNS)
__all__ = ["db", "fleets"]  # fixtures


def close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def scopes(f: Fleet) -> list[dict[str, Any]]:
    a0, a2 = f.aircraft[0]["id"], f.aircraft[2]["id"]
    fl = f.flights[0]
    start = f.as_of - timedelta(days=20)
    return [
        {"flight_id": None, "aircraft_id": None, "start": start, "end": f.as_of},
        {"flight_id": None, "aircraft_id": a0, "start": f.as_of - timedelta(days=60),
         "end": f.as_of},
        {"flight_id": None, "aircraft_id": a2, "start": start, "end": f.as_of},
        {"flight_id": fl["id"], "aircraft_id": None, "start": None, "end": None},
        {"flight_id": fl["id"], "aircraft_id": fl["aircraft_id"],
         "start": fl["departed_at"] + timedelta(minutes=3), "end": None},
    ]  # fmt: skip


@pytest.mark.parametrize("metric", METRICS)
async def test_telemetry_stats_match_statistics(
    db: Database, fleets: dict[str, Fleet], metric: str
) -> None:
    f = fleets["a"]
    for sc in scopes(f):
        scope = tel.TelemetryScope(f.org_id, **sc)
        got = await session(db, f).analytics(tel.telemetry_stats, scope, metric)
        want = stats(f, metric, **sc)
        assert want["count"] > 10, sc
        assert got.count == want["count"], sc
        assert got.min == want["min"] and got.max == want["max"], sc
        assert close(got.avg, want["avg"]) and close(got.stddev, want["stddev"]), sc
        for p in ("p50", "p95", "p99"):
            assert close(getattr(got, p), want[p], rel=1e-6), (sc, p)


async def test_telemetry_stats_empty_window(db: Database, fleets: dict[str, Fleet]) -> None:
    f = fleets["a"]
    scope = tel.TelemetryScope(f.org_id, None, None, f.as_of + timedelta(days=1),
                               f.as_of + timedelta(days=2))  # fmt: skip
    got = await session(db, f).analytics(tel.telemetry_stats, scope, "ALTITUDE_M")
    assert got.count == 0 and got.p50 is None and got.avg is None


@pytest.mark.parametrize(
    ("metric", "bucket_s", "window"),
    [
        ("ALTITUDE_M", 600, None),
        ("ENGINE_TEMP_C", 3600, 3),
        ("FUEL_FLOW_KG_H", 900, 5),
        ("VERTICAL_SPEED_MS", 1000, 2),
    ],
)
async def test_telemetry_series_matches_buckets(
    db: Database, fleets: dict[str, Fleet], metric: str, bucket_s: int, window: int | None
) -> None:
    f = fleets["a"]
    for sc in scopes(f)[1:4]:
        scope = tel.TelemetryScope(f.org_id, **sc)
        got = await session(db, f).analytics(tel.telemetry_series, scope, metric, bucket_s, window)
        origin = sc["start"] or tel.SERIES_ORIGIN
        want = series(f, metric, bucket_s, window, origin, **sc)
        assert len(got) == len(want) >= 1, sc  # an hour bucket may hold a whole flight
        for g, w in zip(got, want, strict=True):
            assert g.bucket == w["bucket"] and g.count == w["count"]
            assert g.min == w["min"] and g.max == w["max"] and close(g.avg, w["avg"])
            assert close(g.moving_average, w["moving_average"])


async def test_fleet_risk_profile_follows_the_formula(
    db: Database, fleets: dict[str, Fleet]
) -> None:
    f = fleets["a"]
    got = await session(db, f).analytics(fleet_sql.fleet_risk_profile, f.org_id, f.as_of, 500, None)
    want = risk(f)
    assert {r.aircraft_id for r in got} == set(want)
    assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)
    for r in got:
        w = want[r.aircraft_id]
        assert abs(r.score - w["score"]) <= 0.051, r
        assert r.level == w["level"] or abs(w["score"] - 25 * round(w["score"] / 25)) < 0.06
        assert {x.name for x in r.factors} == set(w["factors"])
        for x in r.factors:
            value, contribution = w["factors"][x.name]
            assert math.isclose(x.value, value, rel_tol=1e-6, abs_tol=1e-3), x
            assert abs(x.contribution - contribution) <= 0.006, x
            assert math.isclose(x.contribution, 100 * x.weight * x.severity, abs_tol=0.006)
    # the fixture's first aircraft is overdue (1 h interval), has exceedances and anomalies
    first = next(r for r in got if r.aircraft_id == f.aircraft[0]["id"])
    factors = {x.name: x for x in first.factors}
    assert factors["hours_since_maintenance"].severity == 1.0
    assert factors["exceedances"].value > 0 and factors["anomalies"].value > 0
    top = await session(db, f).analytics(
        fleet_sql.fleet_risk_profile, f.org_id, f.as_of, 1, got[-1].score + 0.1
    )
    assert [r.aircraft_id for r in top] == [got[0].aircraft_id]


async def test_maintenance_forecast(db: Database, fleets: dict[str, Fleet]) -> None:
    f = fleets["a"]
    got = await session(db, f).analytics(fleet_sql.maintenance_forecast, f.org_id, f.as_of, 20)
    want = forecast(f)
    assert {g.aircraft_id for g in got} == set(want)
    for g in got:
        w = want[g.aircraft_id]
        assert math.isclose(g.hours_since_inspection, w["hours_since"], abs_tol=1e-3)
        assert math.isclose(g.hours_until_due, w["remaining"], abs_tol=1e-3)
        assert math.isclose(g.utilisation_hours_per_day, w["per_day"], abs_tol=1e-4)
        assert (g.days_until_due is None) == (w["days"] is None)
        if w["days"] is not None:
            assert math.isclose(g.days_until_due or 0, w["days"], abs_tol=0.01)
    assert got[0].aircraft_id == f.aircraft[0]["id"] and got[0].priority == "OVERDUE"
    ranks = ["OVERDUE", "HIGH", "MEDIUM", "LOW"]
    assert [ranks.index(g.priority) for g in got] == sorted(ranks.index(g.priority) for g in got)


async def test_fleet_daily_stats_from_the_view(db: Database, fleets: dict[str, Fleet]) -> None:
    f = fleets["a"]
    start, end = (f.as_of - timedelta(days=50)).date(), f.as_of.date()
    got = await session(db, f).analytics(fleet_sql.fleet_daily_stats, f.org_id, start, end)
    want = daily(f, start, end)
    assert [g.day for g in got] == sorted(want)
    for g in got:
        w = want[g.day]
        assert g.flights == w["flights"] and g.active_aircraft == len(w["aircraft"])
        assert math.isclose(g.flight_hours, w["hours"], abs_tol=1e-6)
        assert g.max_altitude_m == (max(w["alt"]) if w["alt"] else None)
        assert close(g.avg_airspeed_ms, sum(w["speed"]) / len(w["speed"]) if w["speed"] else None)
        assert g.exceedances == w["exc"]
        assert g.refreshed_at <= now_utc() + timedelta(seconds=5)
    assert as_dt(start) <= as_dt(got[0].day)


async def test_fleet_stats_since(db: Database, fleets: dict[str, Fleet]) -> None:
    f = fleets["a"]
    sa = session(db, f)
    # before every flight, between them (one aircraft's in-flight flight included), after all
    for days in (60, 13, 5, 1):
        since = f.as_of - timedelta(days=days)
        got = await sa.analytics(fleet_sql.fleet_stats, f.org_id, since)
        want = fleet_stats(f, since)
        assert [g.registration for g in got] == [w["registration"] for w in want]
        for g, w in zip(got, want, strict=True):
            assert g.aircraft_id == w["id"] and g.last_departed_at == w["last"], days
            assert (g.flights, g.completed) == (w["flights"], w["completed"]), days
            assert math.isclose(g.flight_hours, w["hours"], abs_tol=1e-9), days
    # the in-flight flight counts as a flight, not as completed, and adds no hours
    counted = await sa.analytics(fleet_sql.fleet_stats, f.org_id, f.as_of - timedelta(days=60))
    assert sum(g.flights for g in counted) == len(f.flights)
    assert sum(g.completed for g in counted) == len(f.flights) - 1
    late = await sa.analytics(fleet_sql.fleet_stats, f.org_id, f.as_of)
    assert [(g.flights, g.flight_hours, g.last_departed_at) for g in late] == [(0, 0.0, None)] * 3
    with pytest.raises(BadUserInput):
        await sa.analytics(fleet_sql.fleet_stats, f.org_id, f.as_of.replace(tzinfo=None))


async def test_data_quality_per_flight(db: Database, fleets: dict[str, Fleet]) -> None:
    f = fleets["a"]
    for fl in f.flights:
        got = await session(db, f).analytics(quality_sql.data_quality, f.org_id, fl["id"])
        want = quality(f, fl["id"])
        parts = {p.name: p for p in got.parts}
        assert got.points == want["points"] and close(got.median_interval_s, want["median"])
        assert parts["sampling_gaps"].value == want["gaps"]
        assert parts["out_of_range"].value == want["oor"]
        assert parts["duplicates_rejected"].value == want["dups"]
        assert parts["non_monotonic_time"].value == 0
        assert abs(got.score - want["score"]) <= 0.051
    assert any(p["gaps"] > 0 for p in (quality(f, x["id"]) for x in f.flights))
    assert any(f.duplicates.values())
