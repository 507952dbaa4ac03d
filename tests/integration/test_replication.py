"""Streaming replication of the local stack: what the primary commits, every
replica serves within seconds, and every replica is a hot standby."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg

REPLICATION_DEADLINE_S = 10.0


def replica_nodes(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in stack["nodes"] if n["role"] == "replica"]


async def test_stack_has_at_least_one_running_replica(stack: dict[str, Any]) -> None:
    replicas = replica_nodes(stack)
    assert replicas, "the stack reports no replica"
    assert all(n["state"] == "running" for n in replicas)


async def test_every_replica_reports_recovery(stack: dict[str, Any]) -> None:
    for node in replica_nodes(stack):
        conn = await asyncpg.connect(node["admin_dsn"])
        try:
            assert await conn.fetchval("select pg_is_in_recovery()") is True, node["name"]
        finally:
            await conn.close()
    primary = await asyncpg.connect(stack["nodes"][0]["admin_dsn"])
    try:
        assert await primary.fetchval("select pg_is_in_recovery()") is False
    finally:
        await primary.close()


async def test_row_written_on_primary_is_readable_on_every_replica_within_seconds(
    stack: dict[str, Any], owner_conn: asyncpg.Connection
) -> None:
    slug = f"t-repl-{uuid.uuid4().hex[:10]}"
    org_id = await owner_conn.fetchval(
        "insert into dbx_aviation.organizations (name, slug, kind) values ($1, $2, 'other') "
        "returning id",
        "Replication probe",
        slug,
    )
    written = time.monotonic()

    async def seen_on(node: dict[str, Any]) -> float:
        conn = await asyncpg.connect(node["admin_dsn"])
        try:
            while True:
                found = await conn.fetchval(
                    "select slug from dbx_aviation.organizations where id = $1", org_id
                )
                if found == slug:
                    return time.monotonic() - written
                if time.monotonic() - written > REPLICATION_DEADLINE_S:
                    raise AssertionError(
                        f"{node['name']}: row not replicated in {REPLICATION_DEADLINE_S} s"
                    )
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    delays = await asyncio.gather(*(seen_on(n) for n in replica_nodes(stack)))
    print("replication delays (s):", [round(d, 3) for d in delays])
    assert max(delays) < REPLICATION_DEADLINE_S
