"""Helpers shared by the database integration tests: gateway-role
connections, tenant data written as the owner, scratch database DSNs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gateway.config import Settings
from gateway.db import Database

TENANT_TABLES_SQL = """
select c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'dbx_aviation' and c.relkind in ('r', 'p') and not c.relispartition
order by c.relname
"""


def tuned(settings: Settings, defaults: Mapping[str, Any], **overrides: Any) -> Settings:
    """``settings`` with a test module's ``defaults`` (probe interval, breaker
    cool-down, timeouts), then ``overrides``, replaced."""
    return dataclasses.replace(settings, **{**defaults, **overrides})


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Database]:
    """A started ``Database`` (pools, probe loop), closed on the way out."""
    database = Database(settings)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


async def gateway_connect(dsn: str) -> asyncpg.Connection:
    # transaction-mode PgBouncer (1.18) cannot keep named prepared statements
    return await asyncpg.connect(dsn, statement_cache_size=0)


@dataclass
class TenantData:
    """Rows of one test organization, in every tenant table."""

    org_id: uuid.UUID
    aircraft: list[uuid.UUID] = field(default_factory=list)
    flights: list[uuid.UUID] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


async def create_tenant(
    conn: asyncpg.Connection, *, aircraft: int = 2, points: int = 5
) -> TenantData:
    """An organization with aircraft, flights, telemetry, a maintenance event
    and an ingest batch, written as the owner."""
    slug = f"t-{uuid.uuid4().hex[:12]}"
    org = await conn.fetchval(
        "insert into dbx_aviation.organizations (name, slug, kind) values ($1, $2, 'airline') "
        "returning id",
        f"Test org {slug}",
        slug,
    )
    data = TenantData(org)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    for i in range(aircraft):
        ac = await conn.fetchval(
            "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model) "
            "values ($1, $2, 'Airbus', 'A320neo') returning id",
            org,
            f"T-{i:04d}",
        )
        fl = await conn.fetchval(
            "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin, "
            "destination, departed_at, status) values ($1, $2, 'TS100', 'EGLL', 'LFPG', $3, "
            "'in_flight') returning id",
            org,
            ac,
            now,
        )
        await conn.executemany(
            "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, "
            "aircraft_id, altitude_m, airspeed_ms) values ($1, $2, $3, $4, 1000, 100)",
            [(fl, now + dt.timedelta(seconds=s), org, ac) for s in range(points)],
        )
        await conn.execute(
            "insert into dbx_aviation.maintenance_events (org_id, aircraft_id, component, kind, "
            "performed_at) values ($1, $2, 'Brake assembly', 'inspection', $3)",
            org,
            ac,
            now,
        )
        await conn.execute(
            "insert into dbx_aviation.telemetry_ingest_batches (org_id, flight_id, accepted, "
            "duplicates, rejected, source) values ($1, $2, $3, 0, 0, 'graphql')",
            org,
            fl,
            points,
        )
        data.aircraft.append(ac)
        data.flights.append(fl)
    data.counts = {
        "organizations": 1,
        "aircraft": aircraft,
        "flights": aircraft,
        "flight_telemetry": aircraft * points,
        "maintenance_events": aircraft,
        "telemetry_ingest_batches": aircraft,
    }
    return data
