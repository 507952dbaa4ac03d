"""Fleet analytics SQL: risk profile, maintenance forecast, daily fleet
statistics, fleet flight statistics and per-flight data quality (telemetry
statistics and series are in ``gateway.data.analytics_telemetry``). Every
statement filters ``org_id = $1`` explicitly; row-level security is the
second wall. The daily statistics come from a materialized view that only
``dbx_analytics.daily_fleet_stats_of_org`` may read (see migration 0007).

Fleet risk score (0-100)
------------------------
Computed per aircraft that is not retired, as of a time ``T`` (the request
time). "Recent" means telemetry recorded in ``[T - 30 days, T)``. Aircraft
limits come from ``specs`` (JSON numbers; a missing or non-numeric key uses
the default): ``inspection_interval_h`` (100), ``service_ceiling_m`` (12500),
``max_speed_ms`` (180), ``max_engine_temp_c`` (900).

Four factors, each with a value, a severity ``s`` between 0 and 1 and a weight
``w``; its contribution is ``100 * w * s`` points and the score is the sum of
the contributions (so at most 100), rounded to one decimal:

- ``hours_since_maintenance`` (w = 0.35). Value: flight hours (arrived -
  departed) of the flights that departed at or after the latest maintenance
  event of any kind and arrived by T (all flights when there is none).
  s = min(1, value / inspection_interval_h).
- ``exceedances`` (w = 0.30). Value: recent samples above any limit
  (altitude_m > service_ceiling_m, airspeed_ms > max_speed_ms or
  engine_temp_c > max_engine_temp_c; a sample counts once).
  s = min(1, (value / recent samples) / 0.01): full at 1 % of the samples;
  0 when there are no recent samples.
- ``anomalies`` (w = 0.25). Value: recent samples with an out-of-profile
  vertical speed, abs(vertical_speed_ms) > 25 m/s.
  s = min(1, (value / recent samples) / 0.005): full at 0.5 % of the samples;
  0 when there are no recent samples.
- ``age`` (w = 0.10). Value: years since manufactured_on, (T's UTC date -
  manufactured_on) in days / 365.25; 0 when the date is unknown.
  s = min(1, value / 30).

Level: LOW below 25, MEDIUM from 25, HIGH from 50, CRITICAL from 75. Aircraft
are ranked by score (highest first), then registration. Each factor also
carries a plain-language ``detail`` with the counts it used.

Maintenance forecast
--------------------
Per aircraft that is not retired: hours since the latest ``inspection`` event
(same flight-hour rule as above), hours until due = interval - hours since
(negative when overdue), utilisation = flight hours of flights that departed
in ``[T - 30 days, T)`` and arrived by T, divided by 30 (hours per day), days
until due = hours until due / utilisation (0 when overdue, unknown when the
aircraft did not fly). Priority: OVERDUE when hours until due <= 0; HIGH when
under 10 % of the interval is left or it is due within 7 days; MEDIUM under
25 % or within 30 days; LOW otherwise. Ranked by priority, days until due
(unknown last), hours until due, registration.

Fleet flight statistics
-----------------------
Per aircraft of the org, the flights that departed at or after ``since`` (any
status): their count, how many completed, their flight hours (arrived -
departed; flights not yet arrived add none; rounded to 0.01 h) and the latest
departure among them. Aircraft without such flights are listed with zeros.
The statement is ``dbx_analytics.fleet_stats`` (migration 0009), an inlinable
SQL function, so BI tools and benchmarks can call the very same SQL. It picks
rows by the transaction's org and returns nothing unless ``$1`` is that org
(see the migration for why: a cached generic plan's estimates).

Data quality: see ``gateway.data.analytics_quality``.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gateway.data.analytics_telemetry import Query
from gateway.db.connection import TenantConnection
from gateway.errors import BadUserInput

RECENT = timedelta(days=30)
MAX_LIMIT = 500
MAX_DAYS = 366
ANOMALY_VERTICAL_SPEED_MS = 25.0
# (weight, saturation ratio or scale) per risk factor; see the module docstring.
RISK_WEIGHTS = {
    "hours_since_maintenance": 0.35,
    "exceedances": 0.30,
    "anomalies": 0.25,
    "age": 0.10,
}
EXCEEDANCE_FULL_RATIO = 0.01
ANOMALY_FULL_RATIO = 0.005
AGE_FULL_YEARS = 30.0


@dataclass(frozen=True)
class RiskFactor:
    name: str
    value: float
    severity: float
    weight: float
    contribution: float
    detail: str


@dataclass(frozen=True)
class AircraftRisk:
    aircraft_id: uuid.UUID
    registration: str
    score: float
    level: str
    factors: list[RiskFactor]


@dataclass(frozen=True)
class MaintenanceForecast:
    aircraft_id: uuid.UUID
    registration: str
    last_inspection_at: datetime | None
    hours_since_inspection: float
    inspection_interval_hours: float
    hours_until_due: float
    utilisation_hours_per_day: float
    days_until_due: float | None
    estimated_due_date: date | None
    priority: str


@dataclass(frozen=True)
class DailyFleetStats:
    day: date
    flights: int
    flight_hours: float
    active_aircraft: int
    max_altitude_m: float | None
    avg_airspeed_ms: float | None
    exceedances: int
    refreshed_at: datetime


@dataclass(frozen=True)
class AircraftFlightStats:
    aircraft_id: uuid.UUID
    registration: str
    flights: int
    completed: int
    flight_hours: float
    last_departed_at: datetime | None


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadUserInput(f"`limit` must be between 1 and {MAX_LIMIT}")


_FLEET = (
    "fleet as (select a.id, a.registration, a.manufactured_on,"
    " dbx_analytics.spec_number(a.specs, 'inspection_interval_h', 100) as interval_h,"
    " dbx_analytics.spec_number(a.specs, 'service_ceiling_m', 12500) as ceiling_m,"
    " dbx_analytics.spec_number(a.specs, 'max_speed_ms', 180) as max_speed_ms,"
    " dbx_analytics.spec_number(a.specs, 'max_engine_temp_c', 900) as max_temp_c"
    " from dbx_aviation.aircraft a where a.org_id = $1 and a.status <> 'retired')"
)


def _hours_since(kind_filter: str) -> str:
    """Flight hours since the latest maintenance event matching ``kind_filter``."""
    return (
        f"last_m as (select m.aircraft_id, max(m.performed_at) as at"
        f" from dbx_aviation.maintenance_events m"
        f" where m.org_id = $1 and m.performed_at <= $2 {kind_filter} group by 1),"
        " since as (select f.aircraft_id,"
        " sum(extract(epoch from f.arrived_at - f.departed_at) / 3600.0)::float8 as h"
        " from dbx_aviation.flights f left join last_m lm on lm.aircraft_id = f.aircraft_id"
        " where f.org_id = $1 and f.arrived_at is not null and f.arrived_at <= $2"
        " and (lm.at is null or f.departed_at >= lm.at) group by 1)"
    )


def risk_query(org_id: uuid.UUID, as_of: datetime) -> Query:
    sql = (
        f"with {_FLEET}, {_hours_since('')},"
        " recent as (select t.aircraft_id, count(*) as samples,"
        " count(*) filter (where t.altitude_m > fl.ceiling_m or t.airspeed_ms > fl.max_speed_ms"
        " or t.engine_temp_c > fl.max_temp_c) as exceedances,"
        " count(*) filter (where abs(t.vertical_speed_ms) > $4) as anomalies"
        " from dbx_aviation.flight_telemetry t join fleet fl on fl.id = t.aircraft_id"
        " where t.org_id = $1 and t.recorded_at >= $3 and t.recorded_at < $2 group by 1)"
        " select fl.id, fl.registration, fl.manufactured_on, fl.interval_h,"
        " lm.at as last_maintenance_at,"
        " coalesce(s.h, 0)::float8 as hours, coalesce(r.samples, 0) as samples,"
        " coalesce(r.exceedances, 0) as exceedances, coalesce(r.anomalies, 0) as anomalies"
        " from fleet fl left join last_m lm on lm.aircraft_id = fl.id"
        " left join since s on s.aircraft_id = fl.id left join recent r on r.aircraft_id = fl.id"
    )
    return Query(sql, (org_id, as_of, as_of - RECENT, ANOMALY_VERTICAL_SPEED_MS))


def _level(score: float) -> str:
    if score >= 75:
        return "CRITICAL"
    if score >= 50:
        return "HIGH"
    if score >= 25:
        return "MEDIUM"
    return "LOW"


def _factor(name: str, value: float, severity: float, detail: str) -> RiskFactor:
    weight = RISK_WEIGHTS[name]
    severity = max(0.0, min(1.0, severity))
    return RiskFactor(name, value, severity, weight, round(100 * weight * severity, 2), detail)


def score_aircraft(row: Any, as_of: datetime) -> AircraftRisk:
    """The documented formula applied to one row of ``risk_query``."""
    samples, exc, anom = int(row["samples"]), int(row["exceedances"]), int(row["anomalies"])
    hours, interval = float(row["hours"]), float(row["interval_h"])
    since = row["last_maintenance_at"]
    made: date | None = row["manufactured_on"]
    age = max(0.0, (as_of.date() - made).days / 365.25) if made is not None else 0.0
    factors = [
        _factor(
            "hours_since_maintenance",
            hours,
            hours / interval if interval > 0 else 1.0,
            f"{hours:.1f} flight hours since "
            + (
                f"maintenance on {since.date().isoformat()}"
                if since
                else "first flight (no maintenance recorded)"
            )
            + f"; inspection interval {interval:g} h",
        ),
        _factor(
            "exceedances",
            exc,
            exc / samples / EXCEEDANCE_FULL_RATIO if samples else 0.0,
            f"{exc} of {samples} samples in the last 30 days above aircraft limits",
        ),
        _factor(
            "anomalies",
            anom,
            anom / samples / ANOMALY_FULL_RATIO if samples else 0.0,
            f"{anom} of {samples} samples in the last 30 days with |vertical speed| > "
            f"{ANOMALY_VERTICAL_SPEED_MS:g} m/s",
        ),
        _factor(
            "age",
            round(age, 3),
            age / AGE_FULL_YEARS,
            f"manufactured {made.isoformat()}"
            if made
            else "manufacture date unknown (counted as 0)",
        ),
    ]
    score = round(min(100.0, sum(f.contribution for f in factors)), 1)
    return AircraftRisk(row["id"], row["registration"], score, _level(score), factors)


async def fleet_risk_profile(
    conn: TenantConnection, org_id: uuid.UUID, as_of: datetime, limit: int, min_score: float | None
) -> list[AircraftRisk]:
    check_limit(limit)
    q = risk_query(org_id, as_of)
    scored = [score_aircraft(r, as_of) for r in await conn.fetch(q.sql, *q.args)]
    if min_score is not None:
        scored = [a for a in scored if a.score >= min_score]
    scored.sort(key=lambda a: (-a.score, a.registration))
    return scored[:limit]


def forecast_query(org_id: uuid.UUID, as_of: datetime) -> Query:
    since = _hours_since("and m.kind = 'inspection'")
    sql = (
        f"with {_FLEET}, {since},"
        " util as (select f.aircraft_id,"
        " sum(extract(epoch from f.arrived_at - f.departed_at) / 3600.0)::float8 as h"
        " from dbx_aviation.flights f where f.org_id = $1 and f.departed_at >= $3"
        " and f.departed_at < $2 and f.arrived_at is not null and f.arrived_at <= $2 group by 1)"
        " select fl.id, fl.registration, fl.interval_h, lm.at as last_inspection_at,"
        " coalesce(s.h, 0)::float8 as hours, coalesce(u.h, 0)::float8 as recent_hours"
        " from fleet fl left join last_m lm on lm.aircraft_id = fl.id"
        " left join since s on s.aircraft_id = fl.id left join util u on u.aircraft_id = fl.id"
    )
    return Query(sql, (org_id, as_of, as_of - RECENT))


_PRIORITY_RANK = {"OVERDUE": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}


def forecast_aircraft(row: Any, as_of: datetime) -> MaintenanceForecast:
    interval, hours = float(row["interval_h"]), float(row["hours"])
    remaining = interval - hours
    per_day = float(row["recent_hours"]) / RECENT.days
    days: float | None
    if remaining <= 0:
        days = 0.0
    elif per_day > 0:
        days = remaining / per_day
    else:
        days = None
    share = remaining / interval if interval > 0 else 0.0
    if remaining <= 0:
        priority = "OVERDUE"
    elif share < 0.10 or (days is not None and days <= 7):
        priority = "HIGH"
    elif share < 0.25 or (days is not None and days <= 30):
        priority = "MEDIUM"
    else:
        priority = "LOW"
    due = (as_of + timedelta(days=days)).date() if days is not None and days < 36_500 else None
    return MaintenanceForecast(
        aircraft_id=row["id"],
        registration=row["registration"],
        last_inspection_at=row["last_inspection_at"],
        hours_since_inspection=round(hours, 3),
        inspection_interval_hours=interval,
        hours_until_due=round(remaining, 3),
        utilisation_hours_per_day=round(per_day, 4),
        days_until_due=None if days is None else round(days, 2),
        estimated_due_date=due,
        priority=priority,
    )


async def maintenance_forecast(
    conn: TenantConnection, org_id: uuid.UUID, as_of: datetime, limit: int
) -> list[MaintenanceForecast]:
    check_limit(limit)
    q = forecast_query(org_id, as_of)
    out = [forecast_aircraft(r, as_of) for r in await conn.fetch(q.sql, *q.args)]
    out.sort(
        key=lambda f: (
            _PRIORITY_RANK[f.priority],
            f.days_until_due is None,
            f.days_until_due or 0.0,
            f.hours_until_due,
            f.registration,
        )
    )
    return out[:limit]


def check_days(start: date, end: date) -> None:
    if end < start:
        raise BadUserInput("`to` must not be before `from`")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadUserInput(f"The date range may span at most {MAX_DAYS} days")


def daily_stats_query(org_id: uuid.UUID, start: date, end: date) -> Query:
    sql = (
        "select day, flights, flight_hours, active_aircraft, max_altitude_m, avg_airspeed_ms,"
        " exceedances, refreshed_at from dbx_analytics.daily_fleet_stats_of_org($1, $2, $3)"
    )
    return Query(sql, (org_id, start, end))


async def fleet_daily_stats(
    conn: TenantConnection, org_id: uuid.UUID, start: date, end: date
) -> list[DailyFleetStats]:
    check_days(start, end)
    q = daily_stats_query(org_id, start, end)
    return [
        DailyFleetStats(
            r["day"],
            int(r["flights"]),
            float(r["flight_hours"]),
            int(r["active_aircraft"]),
            r["max_altitude_m"],
            r["avg_airspeed_ms"],
            int(r["exceedances"]),
            r["refreshed_at"],
        )  # fmt: skip
        for r in await conn.fetch(q.sql, *q.args)
    ]


def check_since(since: datetime) -> None:
    if since.tzinfo is None:
        raise BadUserInput("`since` must carry a time zone offset")


def fleet_stats_query(org_id: uuid.UUID, since: datetime) -> Query:
    """``dbx_analytics.fleet_stats`` (migration 0009): one row per aircraft,
    ordered by registration (unique in an org)."""
    sql = (
        "select aircraft_id, registration, flights, completed, flight_hours, last_departed_at"
        " from dbx_analytics.fleet_stats($1, $2)"
    )
    return Query(sql, (org_id, since))


async def fleet_stats(
    conn: TenantConnection, org_id: uuid.UUID, since: datetime
) -> list[AircraftFlightStats]:
    check_since(since)
    q = fleet_stats_query(org_id, since)
    return [
        AircraftFlightStats(
            r["aircraft_id"],
            r["registration"],
            int(r["flights"]),
            int(r["completed"]),
            r["flight_hours"],
            r["last_departed_at"],
        )  # fmt: skip
        for r in await conn.fetch(q.sql, *q.args)
    ]
