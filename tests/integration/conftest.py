"""Fixtures for the database integration tests: PgBouncer DSNs for the
gateway role and scratch databases.

Scratch databases are created by the stack's superuser, owned by dbx_owner,
and dropped at the end; their names are quoted by the server (``format('%I')``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.integration.dbx_fixtures import with_database


@pytest.fixture(scope="session")
def admin_dsn(stack: dict[str, Any]) -> str:
    return str(stack["nodes"][0]["admin_dsn"])


@pytest.fixture(scope="session")
def gateway_dsns(stack: dict[str, Any]) -> dict[str, str]:
    d = stack["dsns"]
    return {
        k: str(d[k]) for k in ("gateway_primary", "gateway_primary_tx", "gateway_primary_tx_single")
    }


ScratchFactory = Callable[[], Awaitable[str]]


@pytest.fixture
async def scratch_db(admin_dsn: str, owner_dsn: str) -> AsyncIterator[ScratchFactory]:
    """Creates empty databases owned by dbx_owner; returns each one's owner DSN."""
    made: list[str] = []

    async def create() -> str:
        name = f"dbx_scratch_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(admin_dsn)
        try:
            sql = await conn.fetchval(
                "select format('create database %I owner dbx_owner', $1::text)", name
            )
            await conn.execute(sql)
        finally:
            await conn.close()
        made.append(name)
        return with_database(owner_dsn, name)

    yield create
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in made:
            sql = await conn.fetchval(
                "select format('drop database if exists %I with (force)', $1::text)", name
            )
            await conn.execute(sql)
    finally:
        await conn.close()
