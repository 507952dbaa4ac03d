"""Row-level security seen by the gateway role through PgBouncer (session and
transaction pooling): no tenant set means no rows, and one tenant's setting
never shows another tenant's rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.dbx_fixtures import (
    TENANT_TABLES_SQL,
    TenantData,
    create_tenant,
    gateway_connect,
)

N_ORGS = 4


def tenant_keys(tenants: list[TenantData]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    return [t.org_id for t in tenants], [f for t in tenants for f in t.flights]


@pytest.fixture(scope="module")
async def tenants(owner_dsn: str) -> list[TenantData]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return [await create_tenant(conn, aircraft=2 + i % 2, points=3 + i) for i in range(N_ORGS)]
    finally:
        await conn.close()


@dataclass(frozen=True)
class TableQueries:
    every_row: str  # the whole table: proves "no org, no rows" on all of it
    scoped: str  # rows of the given orgs ($1) and flights ($2), index-friendly


@pytest.fixture(scope="module")
async def table_queries(owner_dsn: str) -> dict[str, TableQueries]:
    """Per tenant table (found in the catalog), its queries, names quoted by the server."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        rows = await conn.fetch(
            f"""
            select relname,
                   format('select org_id from dbx_aviation.%I', relname) as every_row,
                   case when exists (select 1 from pg_attribute a
                                     where a.attrelid = format('dbx_aviation.%I', relname)::regclass
                                       and a.attname = 'flight_id' and not a.attisdropped)
                        then format('select org_id from dbx_aviation.%I '
                                    'where org_id = any($1) and flight_id = any($2)', relname)
                        else format('select org_id from dbx_aviation.%I '
                                    'where org_id = any($1) and $2::uuid[] is not null', relname)
                   end as scoped
            from ({TENANT_TABLES_SQL}) t
            """
        )
    finally:
        await conn.close()
    return {r["relname"]: TableQueries(r["every_row"], r["scoped"]) for r in rows}


@pytest.fixture(scope="module")
async def gateway_conns(
    gateway_dsns: dict[str, str],
) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    conns = {name: await gateway_connect(dsn) for name, dsn in gateway_dsns.items()}
    yield conns
    for c in conns.values():
        await c.close()


async def test_every_tenant_table_holds_rows_for_the_isolation_tests_to_hide(
    tenants: list[TenantData],
    table_queries: dict[str, TableQueries],
    owner_conn: asyncpg.Connection,
) -> None:
    ids, flights = tenant_keys(tenants)
    for table, q in table_queries.items():
        orgs = {r["org_id"] for r in await owner_conn.fetch(q.scoped, ids, flights)}
        if table in tenants[0].counts:
            assert orgs == set(ids), table


@pytest.mark.parametrize(
    "dsn_name", ["gateway_primary", "gateway_primary_tx", "gateway_primary_tx_single"]
)
async def test_without_org_setting_every_tenant_table_returns_zero_rows(
    dsn_name: str,
    tenants: list[TenantData],
    table_queries: dict[str, TableQueries],
    gateway_conns: dict[str, asyncpg.Connection],
) -> None:
    conn = gateway_conns[dsn_name]
    async with conn.transaction():
        assert await conn.fetchval("select current_setting('dbx.org_id', true)") in (None, "")
        for table, q in table_queries.items():
            assert await conn.fetch(q.every_row) == [], f"{table} leaked rows without an org"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    org_index=st.integers(min_value=0, max_value=N_ORGS - 1),
    dsn_name=st.sampled_from(
        ["gateway_primary", "gateway_primary_tx", "gateway_primary_tx_single"]
    ),
    stranger=st.uuids(),
)
async def test_an_org_setting_shows_only_that_orgs_rows(
    org_index: int,
    dsn_name: str,
    stranger: uuid.UUID,
    tenants: list[TenantData],
    table_queries: dict[str, TableQueries],
    gateway_conns: dict[str, asyncpg.Connection],
) -> None:
    me = tenants[org_index]
    others = [t for i, t in enumerate(tenants) if i != org_index]
    conn = gateway_conns[dsn_name]
    ids, flights = tenant_keys(tenants)
    async with conn.transaction():
        await conn.execute("select set_config('dbx.org_id', $1, true)", str(me.org_id))
        for table, q in table_queries.items():
            orgs = [r["org_id"] for r in await conn.fetch(q.scoped, ids, flights)]
            assert set(orgs) <= {me.org_id}, f"{table} showed another org's rows"
            if table in me.counts:
                assert len(orgs) == me.counts[table], table
        # another org's rows, looked up by their own ids, stay invisible
        other_ids = [a for t in others for a in t.aircraft]
        assert (
            await conn.fetch("select id from dbx_aviation.aircraft where id = any($1)", other_ids)
            == []
        )
        other_flights = [f for t in others for f in t.flights]
        assert (
            await conn.fetchval(
                "select count(*) from dbx_aviation.flight_telemetry where flight_id = any($1)",
                other_flights,
            )
            == 0
        )
    async with conn.transaction():
        await conn.execute("select set_config('dbx.org_id', $1, true)", str(stranger))
        for table, q in table_queries.items():
            assert await conn.fetch(q.scoped, [*ids, stranger], flights) == [], table
