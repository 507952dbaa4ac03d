"""Test organizations written as the owner (bypassing RLS), and the types
of the ``make_org`` and ``scratch_db`` fixtures (``tests/conftest.py``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

# ``make_org(kind=..., name=...)``: a new organization's id
OrgFactory = Callable[..., Awaitable[uuid.UUID]]
# ``scratch_db()``: the owner DSN of a new empty database
ScratchFactory = Callable[[], Awaitable[str]]


async def org_with_telemetry(
    conn: asyncpg.Connection, retention_days: int, at: list[dt.datetime]
) -> uuid.UUID:
    """An org with this retention, one aircraft, one flight and a telemetry
    point at each of ``at`` (written as the owner, so in any month)."""
    slug = f"t-{uuid.uuid4().hex[:10]}"
    org = await conn.fetchval(
        "insert into dbx_aviation.organizations (name, slug, kind, telemetry_retention_days) "
        "values ($1, $2, 'airline', $3) returning id",
        slug,
        slug,
        retention_days,
    )
    ac = await conn.fetchval(
        "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model) "
        "values ($1, 'G-RETN', 'ATR', 'ATR 72-600') returning id",
        org,
    )
    fl = await conn.fetchval(
        "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin, "
        "destination, departed_at) values ($1, $2, 'RT1', 'EGLL', 'EGCC', $3) returning id",
        org,
        ac,
        min(at),
    )
    await conn.executemany(
        "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, aircraft_id, "
        "altitude_m) values ($1, $2, $3, $4, 3000)",
        [(fl, t, org, ac) for t in at],
    )
    return org


async def stored_points(owner_dsn: str, flight_id: str) -> int:
    """Telemetry points stored for a flight, counted as the owner."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        return int(
            await conn.fetchval(
                "select count(*) from dbx_aviation.flight_telemetry where flight_id = $1::uuid",
                flight_id,
            )
        )
    finally:
        await conn.close()
