"""Routing over HTTP, proven by the servers' own counters: reads and
analytics run on the replicas, mutations on the primary, and a replica
killed under load costs no request.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import Api, wait_replicas_serving
from tests.e2e.fleet_data import seed_fleet
from tests.support.wait import wait_replicated

pytestmark = pytest.mark.slow

FLEET = "query Fleet($first: Int!) { fleet(first: $first) { edges { node { id registration } } } }"
CREATE = """
mutation Create($reg: String!) {
  createAircraft(input: {registration: $reg, manufacturer: "Diamond", model: "DA40"}) { id }
}"""


async def aircraft_calls(stack: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per running node: calls of the gateway's fleet page query and of
    INSERTs into aircraft, from pg_stat_statements (each server counts only
    what it ran itself)."""
    out: dict[str, dict[str, int]] = {}
    for node in stack["nodes"]:
        try:
            conn = await asyncpg.connect(node["admin_dsn"], timeout=2)
        except (OSError, asyncpg.PostgresError):
            continue
        try:
            row = await conn.fetchrow(
                """
                select
                  coalesce(sum(calls) filter (where query ilike '%order by a.registration, a.id%'),
                           0)::bigint as reads,
                  coalesce(sum(calls) filter (where query ilike 'insert into dbx_aviation.aircraft%'
                                              ),
                           0)::bigint as writes
                from pg_stat_statements
                """
            )
        finally:
            await conn.close()
        assert row is not None
        out[node["name"]] = {"reads": int(row["reads"]), "writes": int(row["writes"])}
    return out


def delta(
    after: dict[str, dict[str, int]], before: dict[str, dict[str, int]], kind: str
) -> dict[str, int]:
    return {n: after[n][kind] - before.get(n, {}).get(kind, 0) for n in after}


async def test_reads_on_replicas_mutations_on_primary_by_server_counters(
    stack: dict[str, Any],
    make_org: Any,
    owner_dsn: str,
    api: Callable[..., Api],
    client: httpx.AsyncClient,
) -> None:
    org: uuid.UUID = await make_org()
    await seed_fleet(owner_dsn, org, aircraft=20, flights_each=1, prefix="RT")
    await wait_replicated(stack)
    await wait_replicas_serving(client)
    viewer = api(org, "viewer")
    await viewer.data("{ viewer { orgId } }")  # warms the org check
    before = await aircraft_calls(stack)
    for i in range(60):
        await viewer.data(FLEET, {"first": 5 + i % 10})
    reads = delta(await aircraft_calls(stack), before, "reads")
    assert reads["primary"] == 0, reads
    assert reads["replica_1"] > 0 and reads["replica_2"] > 0, reads
    assert sum(reads.values()) >= 60

    operator = api(org, "operator")
    before = await aircraft_calls(stack)
    for i in range(5):
        await operator.data(CREATE, {"reg": f"RTW{i:03d}"})
    writes = delta(await aircraft_calls(stack), before, "writes")
    assert writes["primary"] >= 5, writes
    assert writes.get("replica_1", 0) == 0 and writes.get("replica_2", 0) == 0, writes


async def test_replica_killed_during_http_load_fails_no_request(
    stack: dict[str, Any],
    make_org: Any,
    owner_dsn: str,
    gateway_url: str,
    token: Callable[..., str],
    nodes: Any,
) -> None:
    org: uuid.UUID = await make_org()
    await seed_fleet(owner_dsn, org, aircraft=10, flights_each=1, prefix="RK")
    await wait_replicated(stack)
    headers = {"authorization": f"Bearer {token(org, 'viewer')}"}
    failures: list[str] = []
    ok = 0
    stop_at = time.monotonic() + 20

    async def client_loop() -> None:
        nonlocal ok
        async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
            while time.monotonic() < stop_at:
                r = await c.post(
                    "/graphql", json={"query": FLEET, "variables": {"first": 10}}, headers=headers
                )
                body = r.json()
                if r.status_code != 200 or "errors" in body:
                    failures.append(f"{r.status_code} {body.get('errors')}")
                else:
                    ok += 1

    async def replica_state(c: httpx.AsyncClient, name: str) -> str:
        ready = (await c.get("/readyz")).json()
        node = next(n for n in ready["nodes"] if n["name"] == name)
        return f"{node['state']}/{node['breaker']}"

    load = asyncio.gather(*(client_loop() for _ in range(6)))
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as c:
        await asyncio.sleep(3)
        await nodes.stop("replica_1")
        t0 = time.monotonic()
        while (await replica_state(c, "replica_1")) == "up/closed":
            assert time.monotonic() - t0 < 5, "dead replica not excluded"
            await asyncio.sleep(0.1)
        excluded_s = time.monotonic() - t0
        await asyncio.sleep(3)
        await nodes.start("replica_1")
        t0 = time.monotonic()
        while (await replica_state(c, "replica_1")) != "up/closed":
            assert time.monotonic() - t0 < 20, "replica not used again after restart"
            await asyncio.sleep(0.2)
    await load
    # back in rotation without a gateway restart
    before = await aircraft_calls(stack)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        for _ in range(30):
            r = await c.post(
                "/graphql", json={"query": FLEET, "variables": {"first": 10}}, headers=headers
            )
            assert r.status_code == 200 and "errors" not in r.json()
    after = await aircraft_calls(stack)
    assert failures == [], failures[:3]
    assert ok > 50
    assert excluded_s < 3.0  # probe interval is 1 s
    assert after["replica_1"]["reads"] > before["replica_1"]["reads"], "replica_1 not used again"
