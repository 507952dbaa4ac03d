"""Flights: keyset pages (newest departure first), batched per-aircraft
pages (one LATERAL statement for many aircraft), counts, and the lifecycle
writes (start, complete).

Every statement filters ``org_id`` explicitly besides row-level security.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from gateway.data.fragments import Params, seek_after, where
from gateway.db.connection import TenantConnection

FLIGHT_COLUMNS = (
    "f.id, f.org_id, f.aircraft_id, f.flight_number, f.origin, f.destination, f.departed_at,"
    " f.arrived_at, f.status, f.version, f.created_at, f.updated_at"
)
ORDER_COLUMNS = (
    "f.departed_at",
    "f.id",
)  # descending, index (org_id, [aircraft_id,] departed_at desc, id desc)
ORDER_BY = "order by f.departed_at desc, f.id desc"


@dataclass(frozen=True)
class FlightFilter:
    aircraft_id: uuid.UUID | None = None
    status: str | None = None
    origin: str | None = None
    destination: str | None = None
    departed_from: dt.datetime | None = None
    departed_to: dt.datetime | None = None


def filter_conditions(p: Params, org_param: str, f: FlightFilter | None) -> list[str]:
    out = [f"f.org_id = {org_param}"]
    if f is None:
        return out
    if f.aircraft_id is not None:
        out.append(f"f.aircraft_id = {p.add(f.aircraft_id)}")
    if f.status is not None:
        out.append(f"f.status = {p.add(f.status)}")
    if f.origin is not None:
        out.append(f"f.origin = {p.add(f.origin)}")
    if f.destination is not None:
        out.append(f"f.destination = {p.add(f.destination)}")
    if f.departed_from is not None:
        out.append(f"f.departed_at >= {p.add(f.departed_from)}")
    if f.departed_to is not None:
        out.append(f"f.departed_at < {p.add(f.departed_to)}")
    return out


async def page(
    conn: TenantConnection,
    org_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
    flt: FlightFilter | None,
) -> list[asyncpg.Record]:
    p = Params(org_id)
    cond = filter_conditions(p, "$1", flt)
    if after is not None:
        cond.append(seek_after(ORDER_COLUMNS, (p.add(after[0]), p.add(after[1])), True))
    sql = (
        f"select {FLIGHT_COLUMNS} from dbx_aviation.flights f where {where(cond)}"
        f" {ORDER_BY} limit {p.add(limit)}"
    )
    return await conn.fetch(sql, *p.values)


async def count(conn: TenantConnection, org_id: uuid.UUID, flt: FlightFilter | None) -> int:
    p = Params(org_id)
    cond = filter_conditions(p, "$1", flt)
    return int(
        await conn.fetchval(
            f"select count(*) from dbx_aviation.flights f where {where(cond)}", *p.values
        )
    )


async def pages_by_aircraft(
    conn: TenantConnection,
    org_id: uuid.UUID,
    aircraft_ids: Sequence[uuid.UUID],
    *,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
) -> list[asyncpg.Record]:
    """The newest ``limit`` flights of each aircraft after the key, in one
    statement; rows carry ``aircraft_id`` for regrouping."""
    p = Params(org_id, list(aircraft_ids))
    cond = ["f.org_id = $1", "f.aircraft_id = k.aircraft_id"]
    if after is not None:
        cond.append(seek_after(ORDER_COLUMNS, (p.add(after[0]), p.add(after[1])), True))
    sql = (
        "select f.* from unnest($2::uuid[]) as k(aircraft_id) cross join lateral ("
        f" select {FLIGHT_COLUMNS} from dbx_aviation.flights f where {where(cond)}"
        f" {ORDER_BY} limit {p.add(limit)}) f"
    )
    return await conn.fetch(sql, *p.values)


async def counts_by_aircraft(
    conn: TenantConnection, org_id: uuid.UUID, aircraft_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = await conn.fetch(
        "select f.aircraft_id, count(*) as n from dbx_aviation.flights f"
        " where f.org_id = $1 and f.aircraft_id = any($2::uuid[]) group by f.aircraft_id",
        org_id,
        list(aircraft_ids),
    )
    return {r["aircraft_id"]: int(r["n"]) for r in rows}


async def by_ids(
    conn: TenantConnection, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"select {FLIGHT_COLUMNS} from dbx_aviation.flights f"
        " where f.org_id = $1 and f.id = any($2::uuid[])",
        org_id,
        list(ids),
    )


async def get(
    conn: TenantConnection, org_id: uuid.UUID, flight_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"select {FLIGHT_COLUMNS} from dbx_aviation.flights f where f.org_id = $1 and f.id = $2",
        org_id,
        flight_id,
    )


async def start(
    conn: TenantConnection,
    org_id: uuid.UUID,
    *,
    aircraft_id: uuid.UUID,
    flight_number: str,
    origin: str,
    destination: str,
    departed_at: dt.datetime,
) -> asyncpg.Record | None:
    """A new in-flight flight; None when the aircraft is not visible or retired."""
    return await conn.fetchrow(
        "insert into dbx_aviation.flights as f"
        " (org_id, aircraft_id, flight_number, origin, destination, departed_at, status)"
        " select a.org_id, a.id, $3, $4, $5, $6, 'in_flight' from dbx_aviation.aircraft a"
        " where a.org_id = $1 and a.id = $2 and a.status <> 'retired'"
        f" returning {FLIGHT_COLUMNS}",
        org_id,
        aircraft_id,
        flight_number,
        origin,
        destination,
        departed_at,
    )


async def complete(
    conn: TenantConnection, org_id: uuid.UUID, flight_id: uuid.UUID, arrived_at: dt.datetime
) -> asyncpg.Record | None:
    """Mark an in-flight flight completed and add its hours to the aircraft,
    in one statement; None when the flight is not in flight or the arrival
    is not after the departure."""
    return await conn.fetchrow(
        "with f as ("
        " update dbx_aviation.flights f set status = 'completed', arrived_at = $3,"
        " version = f.version + 1, updated_at = now()"
        " where f.org_id = $1 and f.id = $2 and f.status = 'in_flight' and f.departed_at < $3"
        f" returning {FLIGHT_COLUMNS}),"
        " hours as ("
        " update dbx_aviation.aircraft a set total_flight_hours = a.total_flight_hours"
        " + round((extract(epoch from (f.arrived_at - f.departed_at)) / 3600)::numeric, 2),"
        " updated_at = now()"
        " from f where a.org_id = $1 and a.id = f.aircraft_id returning a.id)"
        " select f.* from f",
        org_id,
        flight_id,
        arrived_at,
    )
