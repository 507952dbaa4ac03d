"""The ``Analytics`` root type, served by replicas (intent ``analytics``):
fleet risk, maintenance forecast, telemetry statistics and series, daily
fleet statistics, fleet flight statistics, per-flight data quality. Every
field runs one ``gateway.data`` function through ``info.context.db.analytics``;
input limits are checked before any SQL runs and fail with ``BAD_USER_INPUT``.

Must not: write SQL (``gateway.data.analytics*``), or read through ``.read``
or ``.write`` (analytics must never load the primary unless configured).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from gateway.api import analytics_plans as plans
from gateway.api.analytics_plans import now, optional_id
from gateway.api.context import Context
from gateway.api.plan.fields import AnalyticPlan, column, param, plan
from gateway.data import analytics as fleet
from gateway.data import analytics_quality as quality
from gateway.data import analytics_telemetry as telemetry

GqlInfo = Info[Context, None]


@strawberry.enum(description="A telemetry column analytics can aggregate.")
class TelemetryMetric(enum.Enum):
    ALTITUDE_M = "ALTITUDE_M"
    AIRSPEED_MS = "AIRSPEED_MS"
    VERTICAL_SPEED_MS = "VERTICAL_SPEED_MS"
    ENGINE_TEMP_C = "ENGINE_TEMP_C"
    FUEL_FLOW_KG_H = "FUEL_FLOW_KG_H"


@strawberry.enum(
    description="Risk band of a score: LOW < 25 <= MEDIUM < 50 <= HIGH < 75 <= CRITICAL."
)
class RiskLevel(enum.Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


@strawberry.enum(description="How soon an aircraft's next inspection is due.")
class MaintenancePriority(enum.Enum):
    OVERDUE = "OVERDUE"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


@strawberry.type(description="One input of a risk score: contribution = 100 * weight * severity.")
class RiskFactor:
    name: str
    value: float
    severity: float = strawberry.field(description="0..1, how far the value is towards the maximum")
    weight: float
    contribution: float = strawberry.field(description="Points this factor adds to the score")
    detail: str = strawberry.field(description="The counts behind the value, in plain words")


@strawberry.type(description="An aircraft's 0-100 risk score with its contributing factors.")
class AircraftRisk:
    aircraft_id: strawberry.ID
    registration: str
    score: float
    level: RiskLevel
    factors: list[RiskFactor]


@strawberry.type(description="When an aircraft's next inspection is due at its recent utilisation.")
class MaintenanceForecast:
    aircraft_id: strawberry.ID
    registration: str
    last_inspection_at: dt.datetime | None
    hours_since_inspection: float
    inspection_interval_hours: float
    hours_until_due: float = strawberry.field(description="Negative when overdue")
    utilisation_hours_per_day: float = strawberry.field(description="Over the last 30 days")
    estimated_days_until_due: float | None = strawberry.field(
        description="0 when overdue; null when the aircraft did not fly in the last 30 days"
    )
    estimated_due_date: dt.date | None
    priority: MaintenancePriority


@strawberry.type(description="Statistics of one metric; null figures when there are no values.")
class TelemetryStats:
    # columns of ``analytics_telemetry.stats_query``; the rest are the request's
    metric: TelemetryMetric = param("metric")
    count: int = column("n")
    min: float | None = column("min")
    max: float | None = column("max")
    avg: float | None = column("avg")
    stddev: float | None = column("stddev", description="Sample standard deviation")
    p50: float | None = column("pct[1]")
    p95: float | None = column("pct[2]")
    p99: float | None = column("pct[3]")
    window_start: dt.datetime | None = param("window_start", description="Inclusive; null if open")
    window_end: dt.datetime | None = param("window_end", description="Exclusive; null if open")


@strawberry.type(description="One time bucket of a telemetry series (empty buckets are omitted).")
class SeriesPoint:
    # columns of ``analytics_telemetry.series_query``
    bucket: dt.datetime = column("bucket", description="Start of the bucket")
    count: int = column("n")
    avg: float = column("avg")
    min: float = column("min")
    max: float = column("max")
    moving_average: float | None = column(
        "moving_average",
        description="Mean of the bucket averages of this and up to N-1 earlier non-empty buckets",
    )


@strawberry.type(description="One UTC day of fleet activity, as of the view's last refresh.")
class DailyFleetStats:
    # columns of ``analytics.daily_stats_query``
    day: dt.date = column("day")
    flights: int = column("flights")
    flight_hours: float = column("flight_hours")
    active_aircraft: int = column("active_aircraft")
    max_altitude_m: float | None = column("max_altitude_m")
    avg_airspeed_ms: float | None = column("avg_airspeed_ms")
    exceedances: int = column("exceedances")
    refreshed_at: dt.datetime = column(
        "refreshed_at",
        description="When the materialized view was last refreshed (dbx-gateway maintain)",
    )


@strawberry.type(description="One aircraft's flights since a time (see `Analytics.fleetStats`).")
class AircraftFlightStats:
    # columns of ``analytics.fleet_stats_query``
    aircraft_id: strawberry.ID = column("aircraft_id")
    registration: str = column("registration", "code")  # aircraft.registration
    flights: int = column("flights", description="Flights that departed at or after `since`")
    completed: int = column("completed", description="Of those, the completed ones")
    flight_hours: float = column(
        "flight_hours",
        description="Hours from departure to arrival of those that arrived, rounded to 0.01",
    )
    last_departed_at: dt.datetime | None = column(
        "last_departed_at", description="The latest of their departures; null when there is none"
    )


@strawberry.type(description="One part of a data-quality score.")
class DataQualityPart:
    name: str
    value: float
    ratio: float
    max_penalty: float
    penalty: float
    detail: str


@strawberry.type(description="A flight's 0-100 telemetry data-quality score with its parts.")
class DataQuality:
    flight_id: strawberry.ID
    score: float
    points: int
    median_interval_s: float | None
    parts: list[DataQualityPart]


def _risk(r: fleet.AircraftRisk) -> AircraftRisk:
    factors = [
        RiskFactor(
            name=f.name,
            value=f.value,
            severity=f.severity,
            weight=f.weight,
            contribution=f.contribution,
            detail=f.detail,
        )
        for f in r.factors
    ]
    return AircraftRisk(
        aircraft_id=strawberry.ID(str(r.aircraft_id)),
        registration=r.registration,
        score=r.score,
        level=RiskLevel(r.level),
        factors=factors,
    )


def _forecast(f: fleet.MaintenanceForecast) -> MaintenanceForecast:
    return MaintenanceForecast(
        aircraft_id=strawberry.ID(str(f.aircraft_id)),
        registration=f.registration,
        last_inspection_at=f.last_inspection_at,
        hours_since_inspection=f.hours_since_inspection,
        inspection_interval_hours=f.inspection_interval_hours,
        hours_until_due=f.hours_until_due,
        utilisation_hours_per_day=f.utilisation_hours_per_day,
        estimated_days_until_due=f.days_until_due,
        estimated_due_date=f.estimated_due_date,
        priority=MaintenancePriority(f.priority),
    )


FromArg = Annotated[dt.datetime | None, strawberry.argument(name="from")]
ToArg = Annotated[dt.datetime | None, strawberry.argument(name="to")]


@strawberry.type(description="Fleet analytics for BI tools; always served by read replicas.")
class Analytics:
    @strawberry.field(description="Aircraft by risk score, highest first (formula in README).")
    async def fleet_risk_profile(
        self, info: GqlInfo, limit: int | None = 20, min_score: float | None = None
    ) -> list[AircraftRisk]:
        limit = 20 if limit is None else limit
        fleet.check_limit(limit)
        ctx = info.context
        rows = await ctx.db.analytics(
            fleet.fleet_risk_profile, ctx.principal.org_id, now(), limit, min_score
        )
        return [_risk(r) for r in rows]

    @strawberry.field(description="Aircraft by how soon their next inspection is due.")
    async def maintenance_forecast(
        self, info: GqlInfo, limit: int | None = 20
    ) -> list[MaintenanceForecast]:
        limit = 20 if limit is None else limit
        fleet.check_limit(limit)
        ctx = info.context
        rows = await ctx.db.analytics(
            fleet.maintenance_forecast, ctx.principal.org_id, now(), limit
        )
        return [_forecast(f) for f in rows]

    @strawberry.field(
        description="Statistics of one metric over a flight, an aircraft or the fleet in"
        " [from, to). Without a flight, `to` defaults to now and `from` to 30 days before"
        " `to`; a window spans at most 366 days.",
        metadata=plan(AnalyticPlan(plans.telemetry_stats)),
    )
    async def telemetry_stats(
        self,
        info: GqlInfo,
        metric: TelemetryMetric,
        flight_id: strawberry.ID | None = None,
        aircraft_id: strawberry.ID | None = None,
        start: FromArg = None,
        end: ToArg = None,
    ) -> TelemetryStats:
        ctx = info.context
        scope = telemetry.resolve_scope(
            ctx.principal.org_id,
            flight_id=optional_id(flight_id, "flightId"),
            aircraft_id=optional_id(aircraft_id, "aircraftId"),
            start=start,
            end=end,
            now=now(),
        )
        s = await ctx.db.analytics(telemetry.telemetry_stats, scope, metric.value)
        return TelemetryStats(
            metric=metric,
            count=s.count,
            min=s.min,
            max=s.max,
            avg=s.avg,
            stddev=s.stddev,
            p50=s.p50,
            p95=s.p95,
            p99=s.p99,
            window_start=scope.start,
            window_end=scope.end,
        )

    @strawberry.field(
        description="date_bin buckets of one metric (same window rules as telemetryStats;"
        " at most 10,000 buckets), with an optional moving average over N buckets.",
        metadata=plan(AnalyticPlan(plans.telemetry_series)),
    )
    async def telemetry_series(
        self,
        info: GqlInfo,
        metric: TelemetryMetric,
        bucket_seconds: int,
        flight_id: strawberry.ID | None = None,
        aircraft_id: strawberry.ID | None = None,
        start: FromArg = None,
        end: ToArg = None,
        moving_average_window: int | None = None,
    ) -> list[SeriesPoint]:
        ctx = info.context
        scope = telemetry.resolve_scope(
            ctx.principal.org_id,
            flight_id=optional_id(flight_id, "flightId"),
            aircraft_id=optional_id(aircraft_id, "aircraftId"),
            start=start,
            end=end,
            now=now(),
        )
        telemetry.check_series(scope, bucket_seconds, moving_average_window)
        rows = await ctx.db.analytics(
            telemetry.telemetry_series, scope, metric.value, bucket_seconds, moving_average_window
        )
        return [
            SeriesPoint(
                bucket=p.bucket,
                count=p.count,
                avg=p.avg,
                min=p.min,
                max=p.max,
                moving_average=p.moving_average,
            )
            for p in rows
        ]

    @strawberry.field(
        description="Per UTC day in [from, to] (at most 366 days), from a materialized view"
        " refreshed by `dbx-gateway maintain`: data is as of `refreshedAt`, not live.",
        metadata=plan(AnalyticPlan(plans.daily_stats)),
    )
    async def fleet_daily_stats(
        self,
        info: GqlInfo,
        start: Annotated[dt.date, strawberry.argument(name="from")],
        end: Annotated[dt.date, strawberry.argument(name="to")],
    ) -> list[DailyFleetStats]:
        fleet.check_days(start, end)
        ctx = info.context
        rows = await ctx.db.analytics(fleet.fleet_daily_stats, ctx.principal.org_id, start, end)
        return [
            DailyFleetStats(
                day=r.day,
                flights=r.flights,
                flight_hours=r.flight_hours,
                active_aircraft=r.active_aircraft,
                max_altitude_m=r.max_altitude_m,
                avg_airspeed_ms=r.avg_airspeed_ms,
                exceedances=r.exceedances,
                refreshed_at=r.refreshed_at,
            )
            for r in rows
        ]

    @strawberry.field(
        description="Every aircraft of the fleet, by registration, with its flights that"
        " departed at or after `since` (any status): count, completed, flight hours and"
        " latest departure. Aircraft without such flights are listed with zeros.",
        metadata=plan(AnalyticPlan(plans.fleet_stats)),
    )
    async def fleet_stats(self, info: GqlInfo, since: dt.datetime) -> list[AircraftFlightStats]:
        fleet.check_since(since)
        ctx = info.context
        rows = await ctx.db.analytics(fleet.fleet_stats, ctx.principal.org_id, since)
        return [
            AircraftFlightStats(
                aircraft_id=strawberry.ID(str(r.aircraft_id)),
                registration=r.registration,
                flights=r.flights,
                completed=r.completed,
                flight_hours=r.flight_hours,
                last_departed_at=r.last_departed_at,
            )
            for r in rows
        ]

    @strawberry.field(description="A flight's telemetry data-quality score with its parts.")
    async def data_quality(self, info: GqlInfo, flight_id: strawberry.ID) -> DataQuality:
        ctx = info.context
        fid = optional_id(flight_id, "flightId") or uuid.UUID(int=0)  # flightId is non-null
        q = await ctx.db.analytics(quality.data_quality, ctx.principal.org_id, fid)
        return DataQuality(
            flight_id=strawberry.ID(str(q.flight_id)),
            score=q.score,
            points=q.points,
            median_interval_s=q.median_interval_s,
            parts=[
                DataQualityPart(
                    name=p.name,
                    value=p.value,
                    ratio=p.ratio,
                    max_penalty=p.max_penalty,
                    penalty=p.penalty,
                    detail=p.detail,
                )
                for p in q.parts
            ],
        )
