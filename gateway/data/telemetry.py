"""Flight telemetry: batched pages and summaries per flight, and the bulk
ingest path (binary COPY into a per-transaction staging table, then
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into the partitioned table:
PostgreSQL refuses COPY straight into a table under row-level security).

Every statement filters ``org_id`` explicitly besides row-level security.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

import asyncpg

from gateway.data.fragments import Params, where
from gateway.db.connection import TenantConnection

METRIC_COLUMNS = (
    "altitude_m",
    "airspeed_ms",
    "latitude",
    "longitude",
    "heading_deg",
    "vertical_speed_ms",
    "engine_temp_c",
    "fuel_flow_kg_h",
)
STAGING_COLUMNS = ("recorded_at", *METRIC_COLUMNS)
TELEMETRY_COLUMNS = "t.flight_id, t.recorded_at, " + ", ".join(f"t.{c}" for c in METRIC_COLUMNS)
STAGING_TABLE = "dbx_ingest_staging"


async def pages_by_flight(
    conn: TenantConnection,
    org_id: uuid.UUID,
    flight_ids: Sequence[uuid.UUID],
    *,
    limit: int,
    after: dt.datetime | None,
    time_from: dt.datetime | None,
    time_to: dt.datetime | None,
) -> list[asyncpg.Record]:
    """Up to ``limit`` points per flight in time order, one statement."""
    p = Params(org_id, list(flight_ids))
    cond = ["t.org_id = $1", "t.flight_id = k.flight_id"]
    if after is not None:
        cond.append(f"t.recorded_at > {p.add(after)}")
    if time_from is not None:
        cond.append(f"t.recorded_at >= {p.add(time_from)}")
    if time_to is not None:
        cond.append(f"t.recorded_at < {p.add(time_to)}")
    sql = (
        "select t.* from unnest($2::uuid[]) as k(flight_id) cross join lateral ("
        f" select {TELEMETRY_COLUMNS} from dbx_aviation.flight_telemetry t where {where(cond)}"
        f" order by t.recorded_at limit {p.add(limit)}) t"
    )
    return await conn.fetch(sql, *p.values)


async def counts_by_flight(
    conn: TenantConnection,
    org_id: uuid.UUID,
    flight_ids: Sequence[uuid.UUID],
    *,
    time_from: dt.datetime | None,
    time_to: dt.datetime | None,
) -> dict[uuid.UUID, int]:
    p = Params(org_id, list(flight_ids))
    cond = ["t.org_id = $1", "t.flight_id = any($2::uuid[])"]
    if time_from is not None:
        cond.append(f"t.recorded_at >= {p.add(time_from)}")
    if time_to is not None:
        cond.append(f"t.recorded_at < {p.add(time_to)}")
    rows = await conn.fetch(
        "select t.flight_id, count(*) as n from dbx_aviation.flight_telemetry t"
        f" where {where(cond)} group by t.flight_id",
        *p.values,
    )
    return {r["flight_id"]: int(r["n"]) for r in rows}


async def summaries(
    conn: TenantConnection, org_id: uuid.UUID, flight_ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select t.flight_id, count(*) as point_count, min(t.recorded_at) as first_recorded_at,"
        " max(t.recorded_at) as last_recorded_at, max(t.altitude_m) as max_altitude_m,"
        " max(t.airspeed_ms) as max_airspeed_ms, avg(t.engine_temp_c) as avg_engine_temp_c"
        " from dbx_aviation.flight_telemetry t"
        " where t.org_id = $1 and t.flight_id = any($2::uuid[]) group by t.flight_id",
        org_id,
        list(flight_ids),
    )


# -- ingest -------------------------------------------------------------------


async def flight_for_ingest(
    conn: TenantConnection, org_id: uuid.UUID, flight_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "select f.id, f.aircraft_id from dbx_aviation.flights f where f.org_id = $1 and f.id = $2",
        org_id,
        flight_id,
    )


async def ingest_context(
    conn: TenantConnection, org_id: uuid.UUID, flight_id: uuid.UUID
) -> asyncpg.Record | None:
    """What ingest checks points against before it opens its transaction:
    the flight, the organization's telemetry retention, and the bounds of
    the telemetry partitions that exist (catalog text parsed back into
    timestamps, as ``dbx_aviation.telemetry_partitions()`` does)."""
    return await conn.fetchrow(
        "select f.id, o.telemetry_retention_days,"
        " array(select b[1]::timestamptz from pg_catalog.pg_inherits i"
        "  join pg_catalog.pg_class c on c.oid = i.inhrelid"
        "  cross join lateral regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),"
        "   'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') as b"
        "  where i.inhparent = 'dbx_aviation.flight_telemetry'::regclass order by 1) as lowers,"
        " array(select b[2]::timestamptz from pg_catalog.pg_inherits i"
        "  join pg_catalog.pg_class c on c.oid = i.inhrelid"
        "  cross join lateral regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),"
        "   'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') as b"
        "  where i.inhparent = 'dbx_aviation.flight_telemetry'::regclass order by 1) as uppers"
        " from dbx_aviation.flights f join dbx_aviation.organizations o on o.id = f.org_id"
        " where f.org_id = $1 and f.id = $2",
        org_id,
        flight_id,
    )


async def create_staging(conn: TenantConnection) -> None:
    # Columns spelled out: LIKE on a partitioned parent is not portable here,
    # and the staging table needs no keys, constraints or RLS.
    cols = ", ".join(
        ["recorded_at timestamptz not null"] + [f"{c} double precision" for c in METRIC_COLUMNS]
    )
    await conn.execute(f"create temporary table {STAGING_TABLE} ({cols}) on commit drop")


async def stage(
    conn: TenantConnection, records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]]
) -> None:
    """Binary COPY of ``(recorded_at, *metrics)`` tuples into the staging table."""
    await conn.copy_records(STAGING_TABLE, records, STAGING_COLUMNS)


async def stage_binary(conn: TenantConnection, data: bytes) -> None:
    """COPY of rows already encoded in the binary COPY format (header and
    trailer included), columns in ``STAGING_COLUMNS`` order."""
    await conn.copy_binary(STAGING_TABLE, data, STAGING_COLUMNS)


async def clear_staging(conn: TenantConnection) -> None:
    await conn.execute(f"truncate {STAGING_TABLE}")


async def insert_staged(
    conn: TenantConnection, org_id: uuid.UUID, flight_id: uuid.UUID, aircraft_id: uuid.UUID
) -> int:
    """Move staged points into the partitioned table; returns how many were
    new. ``on conflict do nothing`` skips repeats of points stored before and
    repeats inside the batch alike (the first of them is inserted, the rest
    then conflict with it), so no sort is needed."""
    metrics = ", ".join(f"s.{c}" for c in METRIC_COLUMNS)
    status = await conn.execute(
        "insert into dbx_aviation.flight_telemetry"
        f" (flight_id, recorded_at, org_id, aircraft_id, {', '.join(METRIC_COLUMNS)})"
        " select $2::uuid, s.recorded_at, $1::uuid, $3::uuid,"
        f" {metrics}"
        f" from {STAGING_TABLE} s"
        " on conflict (flight_id, recorded_at) do nothing",
        org_id,
        flight_id,
        aircraft_id,
    )
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def record_batch(
    conn: TenantConnection,
    org_id: uuid.UUID,
    flight_id: uuid.UUID,
    *,
    accepted: int,
    duplicates: int,
    rejected: int,
    source: str,
    user_id: str,
) -> None:
    await conn.execute(
        "insert into dbx_aviation.telemetry_ingest_batches"
        " (org_id, flight_id, accepted, duplicates, rejected, source, user_id)"
        " values ($1, $2, $3, $4, $5, $6, $7)",
        org_id,
        flight_id,
        accepted,
        duplicates,
        rejected,
        source,
        user_id,
    )
