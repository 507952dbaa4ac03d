"""Maintenance events: batched latest events per aircraft, and recording one.

Every statement filters ``org_id`` explicitly besides row-level security.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg

from gateway.db.connection import TenantConnection

MAINTENANCE_COLUMNS = (
    "m.id, m.org_id, m.aircraft_id, m.component, m.kind, m.performed_at, m.findings,"
    " m.aircraft_hours, m.recorded_by, m.created_at"
)


async def latest_by_aircraft(
    conn: TenantConnection, org_id: uuid.UUID, aircraft_ids: Sequence[uuid.UUID], *, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select m.* from unnest($2::uuid[]) as k(aircraft_id) cross join lateral ("
        f" select {MAINTENANCE_COLUMNS} from dbx_aviation.maintenance_events m"
        " where m.org_id = $1 and m.aircraft_id = k.aircraft_id"
        " order by m.performed_at desc, m.id desc limit $3) m",
        org_id,
        list(aircraft_ids),
        limit,
    )


async def record(
    conn: TenantConnection,
    org_id: uuid.UUID,
    *,
    aircraft_id: uuid.UUID,
    component: str,
    kind: str,
    performed_at: dt.datetime,
    findings: str | None,
    aircraft_hours: float | None,
    recorded_by: str,
) -> asyncpg.Record | None:
    """The new event; None when the aircraft is not visible. Hours default to
    the aircraft's total at the time of recording."""
    return await conn.fetchrow(
        "insert into dbx_aviation.maintenance_events as m"
        " (org_id, aircraft_id, component, kind, performed_at, findings, aircraft_hours,"
        " recorded_by)"
        " select a.org_id, a.id, $3, $4, $5, $6, coalesce($7::numeric, a.total_flight_hours), $8"
        " from dbx_aviation.aircraft a where a.org_id = $1 and a.id = $2"
        f" returning {MAINTENANCE_COLUMNS}",
        org_id,
        aircraft_id,
        component,
        kind,
        performed_at,
        findings,
        aircraft_hours,
        recorded_by,
    )
