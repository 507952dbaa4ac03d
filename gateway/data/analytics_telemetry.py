"""Telemetry statistics and time series for ``analytics`` (one metric over a
flight, an aircraft or the whole fleet, in a time window).

Each query is built by a ``*_query`` function returning a ``Query`` (SQL text
and bind values) so the plan tests can ``EXPLAIN`` exactly what runs. SQL text
is assembled only from fixed fragments of this module: the metric's column
comes from ``METRIC_COLUMNS`` and every value is a bind parameter. Separate
statements per scope (rather than ``$n is null or ...``) keep a generic plan
able to use ``flight_telemetry_pkey`` or ``flight_telemetry_aircraft_idx``;
``recorded_at`` bounds are parameters, so partitions are pruned at plan time
(custom plans) or at executor start-up (generic plans).

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from gateway.db.connection import TenantConnection
from gateway.errors import BadUserInput

METRIC_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "ALTITUDE_M": "altitude_m",
        "AIRSPEED_MS": "airspeed_ms",
        "VERTICAL_SPEED_MS": "vertical_speed_ms",
        "ENGINE_TEMP_C": "engine_temp_c",
        "FUEL_FLOW_KG_H": "fuel_flow_kg_h",
    }
)

MAX_WINDOW = timedelta(days=366)
DEFAULT_WINDOW = timedelta(days=30)
MAX_BUCKETS = 10_000
MAX_MOVING_AVERAGE_WINDOW = 1_000
# date_bin origin when no window start is given: buckets then align to UTC
# midnight for every bucket size that divides a day.
SERIES_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Query:
    sql: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class TelemetryScope:
    """Which points: one org's, optionally one flight's and/or one
    aircraft's, recorded in ``[start, end)`` (either bound may be open only
    for a single flight)."""

    org_id: uuid.UUID
    flight_id: uuid.UUID | None = None
    aircraft_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class TelemetryStats:
    count: int
    min: float | None
    max: float | None
    avg: float | None
    stddev: float | None  # sample standard deviation; None below 2 values
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class SeriesPoint:
    bucket: datetime
    count: int
    avg: float
    min: float
    max: float
    moving_average: float | None


def metric_column(metric: str) -> str:
    try:
        return METRIC_COLUMNS[metric]
    except KeyError:
        raise BadUserInput(f"Unknown metric {metric!r}") from None


def resolve_scope(
    org_id: uuid.UUID,
    *,
    flight_id: uuid.UUID | None,
    aircraft_id: uuid.UUID | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> TelemetryScope:
    """Apply the window rules: for an aircraft or the fleet a missing ``to``
    is now and a missing ``from`` is 30 days before ``to``; a single flight
    may be read whole. Any window must be forwards and at most 366 days."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise BadUserInput(f"`{name}` must carry a time zone offset")
    if flight_id is None:
        end = end or now
        start = start or end - DEFAULT_WINDOW
    if start is not None and end is not None:
        if end <= start:
            raise BadUserInput("`to` must be later than `from`")
        if end - start > MAX_WINDOW:
            raise BadUserInput("The time window may span at most 366 days")
    return TelemetryScope(org_id, flight_id, aircraft_id, start, end)


def _where(scope: TelemetryScope, args: list[Any]) -> str:
    def add(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    conds = [f"t.org_id = {add(scope.org_id)}"]
    if scope.flight_id is not None:
        conds.append(f"t.flight_id = {add(scope.flight_id)}")
    if scope.aircraft_id is not None:
        conds.append(f"t.aircraft_id = {add(scope.aircraft_id)}")
    if scope.start is not None:
        conds.append(f"t.recorded_at >= {add(scope.start)}")
    if scope.end is not None:
        conds.append(f"t.recorded_at < {add(scope.end)}")
    return " and ".join(conds)


def stats_query(scope: TelemetryScope, metric: str) -> Query:
    col = metric_column(metric)
    args: list[Any] = []
    where = _where(scope, args)
    sql = (
        "select count(s.v) as n, min(s.v) as min, max(s.v) as max, avg(s.v) as avg,"
        " stddev_samp(s.v) as stddev,"
        " percentile_cont(array[0.5, 0.95, 0.99]::float8[]) within group (order by s.v) as pct"
        f" from (select t.{col} as v from dbx_aviation.flight_telemetry t where {where}) s"
    )
    return Query(sql, tuple(args))


async def telemetry_stats(
    conn: TenantConnection, scope: TelemetryScope, metric: str
) -> TelemetryStats:
    q = stats_query(scope, metric)
    row = await conn.fetchrow(q.sql, *q.args)
    if row is None or row["n"] == 0:
        return TelemetryStats(0, None, None, None, None, None, None, None)
    pct = row["pct"]
    return TelemetryStats(
        count=int(row["n"]),
        min=row["min"],
        max=row["max"],
        avg=row["avg"],
        stddev=row["stddev"],
        p50=pct[0],
        p95=pct[1],
        p99=pct[2],
    )


def check_series(
    scope: TelemetryScope, bucket_seconds: int, moving_average_window: int | None
) -> None:
    if bucket_seconds < 1:
        raise BadUserInput("`bucketSeconds` must be at least 1")
    if scope.start is not None and scope.end is not None:
        span = (scope.end - scope.start).total_seconds()
        if span / bucket_seconds > MAX_BUCKETS:
            raise BadUserInput(
                f"The window holds more than {MAX_BUCKETS} buckets of {bucket_seconds} s;"
                " use larger buckets or a shorter window"
            )
    if (
        moving_average_window is not None
        and not 1 <= moving_average_window <= MAX_MOVING_AVERAGE_WINDOW
    ):
        raise BadUserInput(
            f"`movingAverageWindow` must be between 1 and {MAX_MOVING_AVERAGE_WINDOW} buckets"
        )


def series_query(
    scope: TelemetryScope, metric: str, bucket_seconds: int, moving_average_window: int | None
) -> Query:
    col = metric_column(metric)
    args: list[Any] = [float(bucket_seconds), scope.start or SERIES_ORIGIN]
    where = _where(scope, args)
    if moving_average_window is None:
        moving = "null::float8"
    else:
        args.append(moving_average_window)
        moving = (
            f"avg(b.avg) over (order by b.bucket rows between (${len(args)}::int - 1) preceding"
            " and current row)"
        )
    sql = (
        "with b as ("
        " select date_bin(make_interval(secs => $1::float8), t.recorded_at, $2::timestamptz)"
        " as bucket,"
        f" count(t.{col}) as n, avg(t.{col}) as avg, min(t.{col}) as min, max(t.{col}) as max"
        f" from dbx_aviation.flight_telemetry t where {where} and t.{col} is not null"
        " group by 1)"
        f" select b.bucket, b.n, b.avg, b.min, b.max, {moving} as moving_average"
        f" from b order by b.bucket limit {MAX_BUCKETS + 1}"
    )
    return Query(sql, tuple(args))


async def telemetry_series(
    conn: TenantConnection,
    scope: TelemetryScope,
    metric: str,
    bucket_seconds: int,
    moving_average_window: int | None,
) -> list[SeriesPoint]:
    check_series(scope, bucket_seconds, moving_average_window)
    q = series_query(scope, metric, bucket_seconds, moving_average_window)
    rows = await conn.fetch(q.sql, *q.args)
    if len(rows) > MAX_BUCKETS:
        raise BadUserInput(f"The series has more than {MAX_BUCKETS} buckets; use larger buckets")
    return [
        SeriesPoint(r["bucket"], int(r["n"]), r["avg"], r["min"], r["max"], r["moving_average"])
        for r in rows
    ]
