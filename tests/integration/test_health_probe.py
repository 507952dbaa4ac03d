"""The health probe against the real stack: probes of one node that overlap
(the background loop, a router that found health stale, a failed connection
asking for a probe now) must not disturb each other. Each node has a single
probe connection; two queries on it at once would fail with asyncpg's
"another operation is in progress", and that failure is ours, not the node's.

These tests stop no node; they only assert on the primary where other
suites running on the same stack might be stopping replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db import Database
from gateway.db.connection import TenantConnection
from tests.integration.dbx_fixtures import running, tuned

FAST: dict[str, Any] = {
    "probe_interval_s": 0.05,
    "breaker_cooldown_s": 5.0,  # a wrong "down" stays visible for the whole test
    "connect_timeout_s": 2.0,
}


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with running(tuned(settings, FAST)) as database:
        yield database


def assert_never_down(db: Database) -> None:
    primary = db.nodes[0]
    assert primary.role == "primary"
    state = primary.describe()  # no password, unlike the node's repr
    usable, error, failures = primary.usable, primary.health.error, primary.breaker.failures
    assert usable, state
    assert error is None, state
    assert failures == 0, state


async def test_concurrent_probes_of_a_healthy_node_all_find_it_up(db: Database) -> None:
    primary = db.nodes[0]
    assert_never_down(db)
    for _ in range(5):
        await asyncio.gather(
            *(db.probe.probe(primary) for _ in range(20)),
            *(db.probe.probe_all() for _ in range(5)),
        )
        db.probe.probe_soon(primary)
        await db.probe.probe(primary)
        assert_never_down(db)


async def test_a_caller_giving_up_does_not_cut_the_probe_short_for_others(
    db: Database,
) -> None:
    """A router that stops waiting (its own timeout) leaves the probe to
    finish for the loop that shares it; the next probe finds the node up."""
    primary = db.nodes[0]
    for _ in range(20):
        waiter = asyncio.ensure_future(db.probe.probe(primary))
        sharer = asyncio.ensure_future(db.probe.probe(primary))
        await asyncio.sleep(0)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        await sharer
        await db.probe.probe(primary)
        assert_never_down(db)


async def where(conn: TenantConnection) -> str:
    await conn.fetchval("select 1")
    return conn.node_name


async def test_reads_on_stale_health_while_the_loop_probes_never_lose_the_primary(
    db: Database, make_org: Any
) -> None:
    """The flaky path of the all-replicas-down routing test, without stopping
    anything: no replica qualifies, health looks stale, so every read probes
    all nodes itself while the background loop is probing them too."""
    org: uuid.UUID = await make_org()
    db.router.max_replica_lag_s = -1.0  # no replica may serve: reads fall back to the primary
    session = db.session(Principal(org_id=org, subject="probe-test", roles=frozenset({"admin"})))

    async def read() -> str:
        for n in db.nodes:
            n.health.probed_at = 0.0  # older than two probe intervals
        return await session.read(where)

    for _ in range(5):
        served = await asyncio.gather(*(read() for _ in range(10)))
        assert set(served) == {"primary"}, served
        assert_never_down(db)


async def test_a_frozen_event_loop_does_not_mark_a_healthy_node_down(settings: Settings) -> None:
    """This process stalls (a blocking call, CPU starvation) while a probe
    is connecting: the timeout fires long after it was due, with the
    handshake unfinished. The node did nothing wrong, so it must stay up
    (before, every node probed meanwhile went down at once, and every
    request failed with UNAVAILABLE for a breaker cool-down)."""
    async with running(
        tuned(settings, FAST, connect_timeout_s=0.3, probe_interval_s=60.0)
    ) as database:
        primary = database.nodes[0]
        assert_never_down(database)
        for _ in range(3):
            # the next probe must open a new connection: several round trips
            await database.probe._drop_conn(primary)
            probe = asyncio.ensure_future(database.probe.probe(primary))
            await asyncio.sleep(0.005)  # the probe is connecting
            time.sleep(1.0)  # noqa: ASYNC251 - the freeze under test (the 0.3 s timeout is due long before it ends)
            await probe
            assert_never_down(database)
        await database.probe.probe(primary)  # and the next probe finds it as it is
        assert_never_down(database)
