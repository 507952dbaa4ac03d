"""Organization look-ups for operator commands (``token``)."""

from __future__ import annotations

import uuid

import asyncpg


async def resolve_org(owner_dsn: str, key: str) -> uuid.UUID | None:
    """An organization's id from its id, slug or name."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        try:
            as_id: uuid.UUID | None = uuid.UUID(key)
        except ValueError:
            as_id = None
        value = await conn.fetchval(
            "select id from dbx_aviation.organizations "
            "where id = $1 or slug = $2 or lower(name) = lower($2) order by slug limit 1",
            as_id,
            key,
        )
        return value if isinstance(value, uuid.UUID) else None
    finally:
        await conn.close()
