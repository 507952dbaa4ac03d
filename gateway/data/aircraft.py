"""Aircraft: keyset pages, counts, batched lookups and the versioned writes
(optimistic locking on ``version``, soft retire).

Every statement filters ``org_id`` explicitly besides row-level security.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.data.fragments import Params, json_text, seek_after, where
from gateway.db.connection import TenantConnection

AIRCRAFT_COLUMNS = (
    "a.id, a.org_id, a.registration, a.manufacturer, a.model, a.serial_number, a.status,"
    " a.specs::text as specs, a.total_flight_hours, a.version, a.created_at, a.updated_at,"
    " a.retired_at"
)
# Fleet pages are ordered by registration (unique per org, index (org_id, registration)).
ORDER_COLUMNS = ("a.registration", "a.id")


@dataclass(frozen=True)
class AircraftFilter:
    status: str | None = None
    manufacturer: str | None = None
    registration_prefix: str | None = None


def filter_conditions(p: Params, org_param: str, f: AircraftFilter | None) -> list[str]:
    out = [f"a.org_id = {org_param}"]
    if f is None:
        return out
    if f.status is not None:
        out.append(f"a.status = {p.add(f.status)}")
    if f.manufacturer is not None:
        out.append(f"a.manufacturer = {p.add(f.manufacturer)}")
    if f.registration_prefix is not None:
        # starts_with avoids LIKE metacharacters in the prefix
        out.append(f"starts_with(a.registration, {p.add(f.registration_prefix)})")
    return out


async def page(
    conn: TenantConnection,
    org_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[str, uuid.UUID] | None,
    flt: AircraftFilter | None,
) -> list[asyncpg.Record]:
    """Up to ``limit`` rows after the key (callers ask one more than they show)."""
    p = Params(org_id)
    cond = filter_conditions(p, "$1", flt)
    if after is not None:
        cond.append(seek_after(ORDER_COLUMNS, (p.add(after[0]), p.add(after[1])), False))
    sql = (
        f"select {AIRCRAFT_COLUMNS} from dbx_aviation.aircraft a where {where(cond)}"
        f" order by a.registration, a.id limit {p.add(limit)}"
    )
    return await conn.fetch(sql, *p.values)


async def count(conn: TenantConnection, org_id: uuid.UUID, flt: AircraftFilter | None) -> int:
    p = Params(org_id)
    cond = filter_conditions(p, "$1", flt)
    sql = f"select count(*) from dbx_aviation.aircraft a where {where(cond)}"
    return int(await conn.fetchval(sql, *p.values))


async def by_ids(
    conn: TenantConnection, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"select {AIRCRAFT_COLUMNS} from dbx_aviation.aircraft a"
        " where a.org_id = $1 and a.id = any($2::uuid[])",
        org_id,
        list(ids),
    )


async def get(
    conn: TenantConnection, org_id: uuid.UUID, aircraft_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"select {AIRCRAFT_COLUMNS} from dbx_aviation.aircraft a where a.org_id = $1 and a.id = $2",
        org_id,
        aircraft_id,
    )


async def create(
    conn: TenantConnection,
    org_id: uuid.UUID,
    *,
    registration: str,
    manufacturer: str,
    model: str,
    serial_number: str | None,
    specs: dict[str, Any],
) -> asyncpg.Record | None:
    """The new row, or None when the registration is taken in this org."""
    return await conn.fetchrow(
        "insert into dbx_aviation.aircraft as a"
        " (org_id, registration, manufacturer, model, serial_number, specs)"
        " values ($1, $2, $3, $4, $5, $6::jsonb)"
        f" on conflict (org_id, registration) do nothing returning {AIRCRAFT_COLUMNS}",
        org_id,
        registration,
        manufacturer,
        model,
        serial_number,
        json_text(specs),
    )


UPDATABLE = ("manufacturer", "model", "status", "specs")


async def update(
    conn: TenantConnection,
    org_id: uuid.UUID,
    aircraft_id: uuid.UUID,
    expected_version: int,
    changes: dict[str, Any],
) -> asyncpg.Record | None:
    """Apply ``changes`` when the row is at ``expected_version`` and not
    retired; None otherwise (see ``get`` to tell why)."""
    p = Params(org_id, aircraft_id, expected_version)
    sets = ["version = a.version + 1", "updated_at = now()"]
    for column in UPDATABLE:  # column names come from this literal tuple only
        if column in changes:
            cast = "::jsonb" if column == "specs" else ""
            value = json_text(changes[column]) if column == "specs" else changes[column]
            sets.append(f"{column} = {p.add(value)}{cast}")
    sql = (
        f"update dbx_aviation.aircraft a set {', '.join(sets)}"
        " where a.org_id = $1 and a.id = $2 and a.version = $3 and a.status <> 'retired'"
        f" returning {AIRCRAFT_COLUMNS}"
    )
    return await conn.fetchrow(sql, *p.values)


async def retire(
    conn: TenantConnection, org_id: uuid.UUID, aircraft_id: uuid.UUID, expected_version: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "update dbx_aviation.aircraft a set status = 'retired', retired_at = now(),"
        " version = a.version + 1, updated_at = now()"
        " where a.org_id = $1 and a.id = $2 and a.version = $3 and a.status <> 'retired'"
        f" returning {AIRCRAFT_COLUMNS}",
        org_id,
        aircraft_id,
        expected_version,
    )
