"""The gateway's pools and PgBouncer's pool modes: the statement cache is on
for session-mode databases and turned off by itself on transaction-mode ones
(PgBouncer 1.18 keeps no prepared statements there), and both work under
concurrent load with tenants kept apart."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import asyncpg
import pytest

from gateway.auth import Principal
from gateway.config import Settings, local_stack_secrets
from gateway.db import Database
from gateway.db.connection import TenantConnection
from gateway.db.pools import detect_transaction_pooling
from gateway.errors import GatewayError
from tests.support.wait import eventually


def direct_gateway_dsn() -> str:
    pw = local_stack_secrets()["dbx_gateway"]
    return f"postgresql://dbx_gateway:{pw}@127.0.0.1:55432/dbx"


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("gateway_primary", False),
        ("gateway_primary_tx", True),
        ("gateway_primary_tx_single", True),
        ("direct", False),
    ],
)
async def test_transaction_pooling_is_detected(
    stack: dict[str, Any], which: str, expected: bool
) -> None:
    dsn = direct_gateway_dsn() if which == "direct" else stack["dsns"][which]
    assert await detect_transaction_pooling(dsn, timeout=2.0) is expected


async def seen_org(conn: TenantConnection, n: int) -> tuple[str, int]:
    # several statement texts, so a prepared-statement mix-up would show
    org = await conn.fetchval("select current_setting('dbx.org_id', true)")
    echoed = await conn.fetchval(f"select $1::int + {n % 7}", n)
    return str(org), int(echoed) - n % 7


@pytest.mark.parametrize("mode", ["session", "transaction"])
async def test_pools_work_in_both_pool_modes_and_keep_tenants_apart(
    settings: Settings, stack: dict[str, Any], mode: str
) -> None:
    dsns = stack["dsns"]
    if mode == "session":
        primary, replicas = dsns["gateway_primary"], tuple(dsns["gateway_replicas"])
    else:
        primary, replicas = dsns["gateway_primary_tx"], tuple(dsns["gateway_replicas_tx"])
    db = Database(
        dataclasses.replace(
            settings, primary_dsn=primary, replica_dsns=replicas, statement_cache="auto"
        )
    )
    await db.start()
    try:
        assert {n.statement_cache for n in db.nodes} == {mode == "session"}
        orgs = [uuid.uuid4() for _ in range(4)]

        async def one(i: int) -> None:
            org = orgs[i % len(orgs)]
            who = Principal(org_id=org, subject=f"u{i}", roles=frozenset({"viewer"}))
            seen, echoed = await db.session(who).read(seen_org, i)
            assert (seen, echoed) == (str(org), i)

        await asyncio.gather(*(one(i) for i in range(400)))
    finally:
        await db.close()


async def test_a_transaction_left_idle_is_ended_by_the_server(
    settings: Settings, stack: dict[str, Any]
) -> None:
    """The idle-in-transaction backstop: a tenant transaction that nobody
    uses for ``DBX_IDLE_IN_TRANSACTION_TIMEOUT_MS`` is ended by PostgreSQL,
    so a stuck caller cannot hold a primary backend, its locks and the
    cluster's xmin."""
    db = Database(
        dataclasses.replace(
            settings,
            primary_dsn=stack["dsns"]["gateway_primary"],
            replica_dsns=(),
            idle_in_transaction_timeout_ms=300,
        )
    )
    await db.start()
    who = Principal(org_id=uuid.uuid4(), subject="idle", roles=frozenset({"operator"}))
    try:
        with pytest.raises(GatewayError):
            async with db.transaction(who, "write") as conn:
                pid = await conn.fetchval("select pg_backend_pid()")
                admin = await asyncpg.connect(stack["nodes"][0]["admin_dsn"])
                try:

                    async def ended() -> bool:
                        sql = "select count(*) = 0 from pg_stat_activity where pid = $1"
                        return bool(await admin.fetchval(sql, pid))

                    await eventually(ended, 10, "the idle transaction ended by the server")
                finally:
                    await admin.close()
                await conn.fetchval("select 1")  # the server ended it: this fails
    finally:
        await db.close()
