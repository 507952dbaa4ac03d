"""Organizations (tenants) as the gateway role sees them: only its own row,
through row-level security and an explicit ``org_id`` filter.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import uuid

import asyncpg

from gateway.db.connection import TenantConnection

ORGANIZATION_COLUMNS = "o.id, o.name, o.slug, o.kind, o.status, o.created_at"


async def get(conn: TenantConnection, org_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"select {ORGANIZATION_COLUMNS} from dbx_aviation.organizations o "
        "where o.org_id = $1 and o.id = $1",
        org_id,
    )


async def status(conn: TenantConnection, org_id: uuid.UUID) -> str | None:
    """'active', 'suspended', or None when the organization does not exist."""
    value = await conn.fetchval(
        "select o.status from dbx_aviation.organizations o where o.org_id = $1 and o.id = $1",
        org_id,
    )
    return None if value is None else str(value)
