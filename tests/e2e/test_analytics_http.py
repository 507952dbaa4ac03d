"""The ``analytics`` graph over HTTP: figures equal the independent
computations for the caller's org only, the role check, and every input
limit answered with ``BAD_USER_INPUT`` before any SQL runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

# the analytics data builders and independent computations are shared with
# the integration tests
from tests.support.analytics_data import (  # noqa: E402
    Fleet,
    two_fleets,
)
from tests.support.analytics_expected import fleet_stats, quality, risk, stats  # noqa: E402

ALL_FIELDS = """
query($from: DateTime!, $to: DateTime!, $day0: Date!, $day1: Date!, $flight: ID!) {
  analytics {
    fleetRiskProfile(limit: 10) { aircraftId registration score level
      factors { name value weight severity contribution detail } }
    maintenanceForecast { aircraftId hoursUntilDue estimatedDaysUntilDue priority }
    telemetryStats(metric: ALTITUDE_M, from: $from, to: $to) {
      count min max avg stddev p50 p95 p99 windowStart windowEnd }
    telemetrySeries(metric: ENGINE_TEMP_C, bucketSeconds: 86400, from: $from, to: $to,
                    movingAverageWindow: 3) { bucket count avg min max movingAverage }
    fleetDailyStats(from: $day0, to: $day1) { day flights flightHours activeAircraft
      maxAltitudeM avgAirspeedMs exceedances refreshedAt }
    dataQuality(flightId: $flight) { flightId score points parts { name value penalty } }
    fleetStats(since: $from) { aircraftId registration flights completed flightHours
      lastDepartedAt }
  }
}
"""


@pytest.fixture(scope="module")
async def http_fleets(owner_dsn: str, stack: dict[str, Any]) -> dict[str, Fleet]:
    return await two_fleets(owner_dsn, stack, ("ha", "hb"), (77, 78))


def variables(f: Fleet, flight: Any) -> dict[str, Any]:
    start = f.as_of - timedelta(days=60)
    return {
        "from": start.isoformat(), "to": f.as_of.isoformat(),
        "day0": start.date().isoformat(), "day1": f.as_of.date().isoformat(),
        "flight": str(flight),
    }  # fmt: skip


async def test_every_field_for_the_callers_org(
    http_fleets: dict[str, Fleet], api: Callable[..., Any]
) -> None:
    a = http_fleets["a"]
    data = await api(a.org_id, "analyst").data(ALL_FIELDS, variables(a, a.flights[0]["id"]))
    an = data["analytics"]
    start = a.as_of - timedelta(days=60)
    want = stats(a, "ALTITUDE_M", flight_id=None, aircraft_id=None, start=start, end=a.as_of)
    got = an["telemetryStats"]
    assert got["count"] == want["count"] and got["max"] == want["max"]
    for p in ("p50", "p95", "p99"):
        assert math.isclose(got[p], want[p], rel_tol=1e-6)
    # risk scores are computed at request time: hours and windows can only
    # have moved by the seconds since the fixture's as_of
    want_risk = risk(a)
    assert {r["aircraftId"] for r in an["fleetRiskProfile"]} == {str(k) for k in want_risk}
    for r in an["fleetRiskProfile"]:
        assert abs(r["score"] - want_risk[next(k for k in want_risk if str(k) == r["aircraftId"])]
                   ["score"]) < 1.0  # fmt: skip
        assert len(r["factors"]) == 4
    assert {m["aircraftId"] for m in an["maintenanceForecast"]} == {str(k) for k in want_risk}
    assert an["telemetrySeries"] and all(s["count"] > 0 for s in an["telemetrySeries"])
    days = an["fleetDailyStats"]
    assert days and all(d["maxAltitudeM"] is None or d["maxAltitudeM"] < 19_000 for d in days)
    want_fleet = fleet_stats(a, start)
    assert [s["aircraftId"] for s in an["fleetStats"]] == [str(w["id"]) for w in want_fleet]
    assert [s["flights"] for s in an["fleetStats"]] == [w["flights"] for w in want_fleet]
    assert [s["flightHours"] for s in an["fleetStats"]] == [w["hours"] for w in want_fleet]
    q = quality(a, a.flights[0]["id"])
    assert an["dataQuality"]["points"] == q["points"]
    assert math.isclose(an["dataQuality"]["score"], q["score"], abs_tol=0.051)


async def test_other_orgs_ids_answer_nothing(
    http_fleets: dict[str, Fleet], api: Callable[..., Any]
) -> None:
    a, b = http_fleets["a"], http_fleets["b"]
    client = api(a.org_id, "analyst")
    body = (
        await client.post(
            "query($a: ID!, $f: ID!) { analytics {"
            " byAircraft: telemetryStats(metric: ALTITUDE_M, aircraftId: $a) { count }"
            " byFlight: telemetryStats(metric: ALTITUDE_M, flightId: $f) { count }"
            ' fleet: fleetStats(since: "2000-01-01T00:00:00Z") { aircraftId } } }',
            {"a": str(b.aircraft[0]["id"]), "f": str(b.flights[0]["id"])},
        )
    ).json()
    assert "errors" not in body, body
    an = body["data"]["analytics"]
    assert {k: an[k] for k in ("byAircraft", "byFlight")} == {
        "byAircraft": {"count": 0},
        "byFlight": {"count": 0},
    }
    assert {x["aircraftId"] for x in an["fleet"]} == {str(x["id"]) for x in a.aircraft}
    r = await client.post(
        "query($f: ID!) { analytics { dataQuality(flightId: $f) { score } } }",
        {"f": str(b.flights[0]["id"])},
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_viewer_may_not_read_analytics(
    http_fleets: dict[str, Fleet], api: Callable[..., Any]
) -> None:
    r = await api(http_fleets["a"].org_id, "viewer").post(
        "{ analytics { maintenanceForecast { priority } } }"
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("fleetRiskProfile(limit: 501) { score }", "limit"),
        ("maintenanceForecast(limit: 0) { priority }", "limit"),
        ('telemetryStats(metric: ALTITUDE_M, from: "2025-01-01T00:00:00Z",'
         ' to: "2026-06-01T00:00:00Z") { count }', "366 days"),
        ('telemetryStats(metric: ALTITUDE_M, from: "2026-06-01T00:00:00Z",'
         ' to: "2026-05-01T00:00:00Z") { count }', "later"),
        ('telemetryStats(metric: ALTITUDE_M, flightId: "nope") { count }', "flightId"),
        ('telemetrySeries(metric: ALTITUDE_M, bucketSeconds: 0) { count }', "bucketSeconds"),
        ('telemetrySeries(metric: ALTITUDE_M, bucketSeconds: 60, from: "2026-01-01T00:00:00Z",'
         ' to: "2026-03-01T00:00:00Z") { count }', "10000 buckets"),
        ('telemetrySeries(metric: ALTITUDE_M, bucketSeconds: 3600, movingAverageWindow: 0)'
         ' { count }', "movingAverageWindow"),
        ('fleetDailyStats(from: "2025-01-01", to: "2026-06-01") { day }', "366 days"),
        ('fleetDailyStats(from: "2026-06-01", to: "2026-05-01") { day }', "before"),
        ('fleetStats(since: "2026-06-01T00:00:00") { flights }', "time zone"),
    ],
)  # fmt: skip
async def test_limits_are_bad_user_input(
    http_fleets: dict[str, Fleet], api: Callable[..., Any], field: str, message: str
) -> None:
    r = await api(http_fleets["a"].org_id, "analyst").post(f"{{ analytics {{ {field} }} }}")
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "BAD_USER_INPUT", err
    assert message in err["message"], err
