"""Tenant settings on a transaction-mode PgBouncer database with a single
server connection (``dbx_tx_single``): ``set_config(..., true)`` dies with its
transaction, committed or aborted, so no client ever inherits another's org;
and a session-level setting *does* leak there, which proves the first test
would catch a leak (TEST-CATALOG T2/T3)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.integration.dbx_fixtures import TenantData, create_tenant, gateway_connect

CLIENTS = 4
ROUNDS_PER_CLIENT = 60


class Abort(Exception):
    """Raised inside a transaction to roll it back on purpose."""


@pytest.fixture(scope="module")
async def two_tenants(owner_dsn: str) -> tuple[TenantData, TenantData]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return await create_tenant(conn, aircraft=2), await create_tenant(conn, aircraft=3)
    finally:
        await conn.close()


@pytest.fixture
async def single_clients(gateway_dsns: dict[str, str]) -> AsyncIterator[list[asyncpg.Connection]]:
    conns = [
        await gateway_connect(gateway_dsns["gateway_primary_tx_single"]) for _ in range(CLIENTS)
    ]
    yield conns
    for c in conns:
        await c.close()


async def observed_context(
    conn: asyncpg.Connection, aircraft_ids: list[uuid.UUID]
) -> tuple[str | None, int]:
    """The org setting and the visible test aircraft in a fresh transaction."""
    async with conn.transaction():
        setting = await conn.fetchval("select current_setting('dbx.org_id', true)")
        visible = await conn.fetchval(
            "select count(*) from dbx_aviation.aircraft where id = any($1)", aircraft_ids
        )
    return setting, int(visible)


async def test_transaction_local_org_never_outlives_its_transaction_on_a_single_server_pool(
    two_tenants: tuple[TenantData, TenantData], single_clients: list[asyncpg.Connection]
) -> None:
    a, b = two_tenants
    all_aircraft = a.aircraft + b.aircraft
    rng = random.Random(20261125)

    async def client(conn: asyncpg.Connection, seed: int) -> int:
        local = random.Random(seed)
        n = 0
        for _ in range(ROUNDS_PER_CLIENT):
            me = local.choice((a, b))
            try:
                async with conn.transaction():
                    await conn.execute("select set_config('dbx.org_id', $1, true)", str(me.org_id))
                    assert await conn.fetchval("select current_setting('dbx.org_id', true)") == str(
                        me.org_id
                    )
                    rows = await conn.fetch(
                        "select org_id from dbx_aviation.aircraft where id = any($1)", all_aircraft
                    )
                    assert {r["org_id"] for r in rows} == {me.org_id}
                    assert len(rows) == len(me.aircraft)
                    if local.random() < 0.3:
                        raise Abort
            except Abort:
                pass
            # the next transaction, on whichever client, starts with no org
            setting, visible = await observed_context(conn, all_aircraft)
            assert setting in (None, ""), f"org leaked into the next transaction: {setting}"
            assert visible == 0
            n += 1
            await asyncio.sleep(0)
        return n

    counts = await asyncio.gather(*(client(c, rng.random()) for c in single_clients))
    checked = sum(counts)
    assert checked == CLIENTS * ROUNDS_PER_CLIENT


async def test_session_level_setting_leaks_across_clients_on_a_single_server_pool(
    two_tenants: tuple[TenantData, TenantData], single_clients: list[asyncpg.Connection]
) -> None:
    """The canary: the mistake the gateway must never make is visible here."""
    a, b = two_tenants
    first, second = single_clients[0], single_clients[1]
    try:
        # session-level (is_local = false): what a plain SET does
        await first.execute("select set_config('dbx.org_id', $1, false)", str(a.org_id))
        setting, visible = await observed_context(second, a.aircraft + b.aircraft)
    finally:
        await first.execute("select set_config('dbx.org_id', '', false)")
    assert setting == str(a.org_id), "the session setting did not reach the other client"
    assert visible == len(a.aircraft)
    # and once cleared, the shared server connection is clean again
    setting, visible = await observed_context(second, a.aircraft + b.aircraft)
    assert setting in (None, "") and visible == 0
