"""Read-replica routing against the real stack (primary, 2 replicas, PgBouncer):
where each intent runs, lag-aware exclusion, read-your-writes, and what
happens when nodes fail. Node faults are injected with
``deploy/local/stack stop/start`` and repaired at teardown.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db import Database
from gateway.db.connection import TenantConnection
from gateway.errors import Unavailable
from tests.integration.dbx_fixtures import running, tuned
from tests.support.analytics_data import replica_admin_dsns, wait_for_replicas
from tests.support.wait import eventually

pytestmark = pytest.mark.slow


async def where(conn: TenantConnection) -> tuple[str, int]:
    port = await conn.fetchval("select inet_server_port()")
    return conn.node_name, int(port)


async def count_aircraft(conn: TenantConnection, org_id: uuid.UUID) -> int:
    return int(
        await conn.fetchval("select count(*) from dbx_aviation.aircraft where org_id = $1", org_id)
    )


async def find_aircraft(conn: TenantConnection, org_id: uuid.UUID, reg: str) -> bool:
    row = await conn.fetchval(
        "select 1 from dbx_aviation.aircraft where org_id = $1 and registration = $2", org_id, reg
    )
    return row is not None


async def insert_aircraft(conn: TenantConnection, org_id: uuid.UUID, reg: str) -> uuid.UUID:
    value = await conn.fetchval(
        "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model) "
        "values ($1, $2, 'Cessna', '172S') returning id",
        org_id,
        reg,
    )
    assert isinstance(value, uuid.UUID)
    return value


FAST: dict[str, Any] = {
    "probe_interval_s": 0.2,
    "breaker_cooldown_s": 0.5,
    "connect_timeout_s": 1.0,
}


def fast(settings: Settings, **overrides: Any) -> Settings:
    return tuned(settings, FAST, **overrides)


@pytest.fixture(autouse=True)
async def whole_stack(stack: dict[str, Any], admin_dsn: str) -> None:
    """Each test starts on a whole stack, whatever ran before it: a replica
    another test stopped or paused is running again (the ``nodes`` teardown)
    and has replayed the primary's WAL before any ``Database`` here probes it."""
    primary = await asyncpg.connect(admin_dsn)
    try:
        await wait_for_replicas(primary, replica_admin_dsns(stack))
    finally:
        await primary.close()


@pytest.fixture
async def org(make_org: Any) -> uuid.UUID:
    return await make_org()  # type: ignore[no-any-return]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with running(fast(settings)) as database:
        yield database


def principal(org_id: uuid.UUID) -> Principal:
    return Principal(org_id=org_id, subject="routing-test", roles=frozenset({"admin"}))


async def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    await eventually(predicate, timeout_s=timeout, period_s=0.1)


async def test_reads_and_analytics_run_on_replicas_writes_on_primary(
    db: Database, org: uuid.UUID
) -> None:
    session = db.session(principal(org))
    reads = Counter([(await session.read(where))[0] for _ in range(60)])
    analytics = Counter([(await session.analytics(where))[0] for _ in range(20)])
    async with session.write() as conn:
        written = await where(conn)
    assert set(reads) == {"replica_1", "replica_2"}, reads
    assert set(analytics) <= {"replica_1", "replica_2"}, analytics
    assert written == ("primary", 55432)


async def test_analytics_prefer_their_replicas_and_fall_back_to_the_others(
    settings: Settings, org: uuid.UUID, nodes: Any
) -> None:
    async with running(fast(settings, analytics_replicas=("replica_2",))) as db:
        session = db.session(principal(org))
        analytics = Counter([(await session.analytics(where))[0] for _ in range(20)])
        reads = Counter([(await session.read(where))[0] for _ in range(60)])
        assert analytics == {"replica_2": 20}, analytics
        assert set(reads) == {"replica_1", "replica_2"}, reads  # reads are not pinned
        await nodes.stop("replica_2")
        await wait_until(lambda: not db.nodes[2].usable, timeout=5)
        spilled = Counter([(await session.analytics(where))[0] for _ in range(10)])
        assert spilled == {"replica_1": 10}, spilled
        await nodes.start("replica_2")
        await wait_until(lambda: db.nodes[2].usable, timeout=20)
        back = Counter([(await session.analytics(where))[0] for _ in range(10)])
        assert back == {"replica_2": 10}, back


async def test_replica_killed_under_load_loses_no_request_and_is_used_again(
    db: Database, org: uuid.UUID, nodes: Any
) -> None:
    session = db.session(principal(org))
    served: Counter[str] = Counter()
    failures: list[BaseException] = []
    stop_at = time.monotonic() + 12

    async def client() -> None:
        while time.monotonic() < stop_at:
            try:
                served[(await session.read(where))[0]] += 1
            except Exception as exc:  # counted, not raised: the test asserts zero
                failures.append(exc)

    load = asyncio.gather(*(client() for _ in range(8)))
    await asyncio.sleep(2)
    await nodes.stop("replica_1")  # pg_ctl stop -m immediate
    stopped_at = time.monotonic()
    await wait_until(lambda: not db.nodes[1].usable, timeout=5)
    excluded_after = time.monotonic() - stopped_at
    before = served["replica_1"]
    await asyncio.sleep(2)
    assert served["replica_1"] == before, "a dead replica kept receiving reads"
    await nodes.start("replica_1")
    await wait_until(lambda: db.nodes[1].usable, timeout=20)
    await load
    after = Counter([(await session.read(where))[0] for _ in range(40)])
    assert failures == [], [(f, repr(f.__cause__)) for f in failures[:3]]
    assert excluded_after < 5 * db.settings.probe_interval_s + 1.0
    assert after["replica_1"] > 0, "the replica was not used again after it came back"


async def test_lagging_replica_is_skipped_and_tokens_always_read_your_writes(
    settings: Settings, org: uuid.UUID, nodes: Any
) -> None:
    db = Database(fast(settings, max_replica_lag_s=1.0))
    await db.start()
    try:
        session = db.session(principal(org))
        await nodes.pause_replay("replica_1")
        # keep writing so replica_1's replay lag grows past the threshold
        for i in range(40):
            async with session.write() as conn:
                await insert_aircraft(conn, org, f"LAG{i:04d}")
            await asyncio.sleep(0.05)
        await wait_until(lambda: (db.nodes[1].health.lag_s or 0) > 1.0, timeout=10)
        await eventually(
            lambda: db.nodes[1] not in db.router.eligible_replicas(),
            timeout_s=10,
            what="the lagging replica_1 out of the read rotation",
        )
        served = Counter([(await session.read(where))[0] for _ in range(50)])
        assert served["replica_1"] == 0, served
        assert served["replica_2"] > 0, served
    finally:
        await db.close()


async def test_analytics_refused_for_lag_look_again_once_the_replicas_caught_up(
    settings: Settings, org: uuid.UUID, nodes: Any
) -> None:
    """A refusal for replica lag rests on a fresh reading: analytics are
    served as soon as the replicas have caught up, not one probe round
    later (the background probe here runs every 30 s)."""
    replicas = ("replica_1", "replica_2")
    db = Database(fast(settings, max_replica_lag_s=1.0, probe_interval_s=30.0))
    await db.start()
    try:
        session = db.session(principal(org))
        for name in replicas:
            await nodes.pause_replay(name)
        for i in range(20):
            async with session.write() as conn:
                await insert_aircraft(conn, org, f"RCK{i:04d}")
            await asyncio.sleep(0.05)

        async def both_lag() -> bool:
            await db.probe.probe_all()
            return all((n.health.lag_s or 0) > 1.0 for n in db.router.replicas)

        await eventually(both_lag, timeout_s=10, what="both replicas lagging past 1 s")
        with pytest.raises(Unavailable):
            await session.analytics(where)
        for name in replicas:
            await nodes.resume_replay(name)
        primary = await asyncpg.connect(nodes.admin_dsn("primary"))
        try:
            await wait_for_replicas(primary, [nodes.admin_dsn(name) for name in replicas])
        finally:
            await primary.close()
        await asyncio.sleep(0.15)  # older than the recheck age
        served, _ = await session.analytics(where)
        assert served in replicas
    finally:
        await db.close()


async def test_read_your_writes_with_token_never_misses_while_without_may_be_stale(
    settings: Settings, org: uuid.UUID, nodes: Any
) -> None:
    # A generous lag limit keeps the paused replica eligible: only the token
    # protects the reader from it. The router already prefers the fresher
    # replica, so the stale read is shown on a gateway that has only the
    # paused one.
    db = Database(fast(settings, max_replica_lag_s=3600.0))
    only_paused = Database(
        fast(settings, max_replica_lag_s=3600.0, replica_dsns=settings.replica_dsns[:1])
    )
    await db.start()
    await only_paused.start()
    try:
        await nodes.pause_replay("replica_1")
        misses = stale = 0
        tries = 1000
        for i in range(tries):
            writer = db.session(principal(org))
            reg = f"RYW{i:05d}"
            async with writer.write() as conn:
                await insert_aircraft(conn, org, reg)
            token = writer.token
            assert token is not None
            if not await db.session(principal(org), token).read(find_aircraft, org, reg):
                misses += 1
            if i % 50 == 0 and not await only_paused.session(principal(org)).read(
                find_aircraft, org, reg
            ):
                stale += 1
        # the token also protects a gateway whose only replica is stale
        with_token = only_paused.session(principal(org), token)
        assert await with_token.read(find_aircraft, org, reg)
        assert misses == 0
        assert stale > 0, "without the token the paused replica should have served stale reads"
    finally:
        await db.close()
        await only_paused.close()


async def test_primary_down_reads_continue_writes_fail_fast_and_acknowledged_writes_survive(
    db: Database, org: uuid.UUID, nodes: Any, owner_dsn: str
) -> None:
    session = db.session(principal(org))
    acknowledged: list[uuid.UUID] = []
    for i in range(20):
        async with session.write() as conn:
            acknowledged.append(await insert_aircraft(conn, org, f"ACK{i:04d}"))
    await nodes.stop("primary")
    await wait_until(lambda: not db.nodes[0].usable, timeout=5)
    read_errors = 0
    for _ in range(50):
        try:
            await db.session(principal(org)).read(count_aircraft, org)
        except Exception:
            read_errors += 1
    t0 = time.monotonic()
    with pytest.raises(Unavailable):
        async with db.session(principal(org)).write() as conn:
            await insert_aircraft(conn, org, "NOPE1")
    write_fail_s = time.monotonic() - t0
    await nodes.start("primary")
    await wait_until(lambda: db.nodes[0].usable, timeout=30)
    async with db.session(principal(org)).write() as conn:
        acknowledged.append(await insert_aircraft(conn, org, "AFTER1"))
    owner = await asyncpg.connect(owner_dsn)
    try:
        present = {
            r["id"]
            for r in await owner.fetch(
                "select id from dbx_aviation.aircraft where org_id = $1", org
            )
        }
    finally:
        await owner.close()
    assert read_errors == 0
    assert write_fail_s < 1.0, write_fail_s
    assert set(acknowledged) <= present


async def test_all_replicas_down_reads_use_primary_analytics_unavailable_unless_allowed(
    settings: Settings, org: uuid.UUID, nodes: Any
) -> None:
    strict = Database(fast(settings))
    lenient = Database(fast(settings, analytics_primary_fallback=True))
    await strict.start()
    await lenient.start()
    try:
        await nodes.stop("replica_1")
        await nodes.stop("replica_2")
        await wait_until(
            lambda: not any(n.usable for n in strict.nodes[1:] + lenient.nodes[1:]), timeout=5
        )
        assert (await strict.session(principal(org)).read(where))[0] == "primary"
        with pytest.raises(Unavailable):
            await strict.session(principal(org)).analytics(where)
        assert (await lenient.session(principal(org)).analytics(where))[0] == "primary"
    finally:
        await strict.close()
        await lenient.close()
