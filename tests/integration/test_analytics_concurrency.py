"""``DBX_ANALYTICS_CONCURRENCY``: how many analytics transactions one worker
runs on one node at once. The others wait for a slot (at most the analytics
timeout, then ``TIMEOUT``); reads are not limited by it; 0 lifts the limit.
Against the real stack (two replicas behind PgBouncer)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db.connection import TenantConnection
from gateway.db.database import Database, DbSession
from gateway.errors import ClientClosedRequest, Timeout
from tests.integration.dbx_fixtures import running, tuned
from tests.support.wait import eventually

# analytics_per_request 0: one session here stands for many requests
FAST: dict[str, Any] = {
    "probe_interval_s": 0.2,
    "connect_timeout_s": 2.0,
    "analytics_per_request": 0,
}


class Peak:
    """Transactions running at once, per node, at their highest."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.high: Counter[str] = Counter()
        self.idle_started = 0
        self.two_idle = asyncio.Event()

    async def hold(self, conn: TenantConnection, seconds: float) -> str:
        node = conn.node_name
        self.now[node] += 1
        self.high[node] = max(self.high[node], self.now[node])
        try:
            await conn.fetchval("select pg_sleep($1)", seconds)
        finally:
            self.now[node] -= 1
        return node

    async def idle(self, conn: TenantConnection, seconds: float) -> str:
        """Holds the transaction open without a statement running (so no
        statement timeout ends it)."""
        node = conn.node_name
        self.now[node] += 1
        try:
            await conn.fetchval("select 1")
            self.idle_started += 1
            if self.idle_started == 2:
                self.two_idle.set()
            await asyncio.sleep(seconds)
        finally:
            self.now[node] -= 1
        return node


async def hold_every_slot(
    session: DbSession, peak: Peak, seconds: float
) -> list[asyncio.Task[str]]:
    """Two idle analytics transactions, one per replica, each in the only
    slot of its node (``analytics_concurrency=1``), started when this returns."""
    holders = [asyncio.create_task(session.analytics(peak.idle, seconds)) for _ in range(2)]
    await asyncio.wait_for(peak.two_idle.wait(), 10)
    return holders


def waiting(db: Database) -> int:
    """Analytics calls waiting for a slot, on every node (what /metrics
    reports as ``dbx_analytics_waiting``)."""
    return sum(int(n.pool_stats()["analytics_waiting"]) for n in db.nodes)


def principal() -> Principal:
    return Principal(org_id=uuid.uuid4(), subject="concurrency-test", roles=frozenset({"admin"}))


async def test_analytics_wait_for_a_slot_per_node_and_reads_do_not(settings: Settings) -> None:
    async with running(tuned(settings, FAST, analytics_concurrency=2)) as db:
        session = db.session(principal())
        peak = Peak()
        t0 = time.monotonic()
        nodes = await asyncio.gather(*(session.analytics(peak.hold, 0.2) for _ in range(12)))
        elapsed = time.monotonic() - t0
        assert set(nodes) == {"replica_1", "replica_2"}, nodes
        assert max(peak.high.values()) == 2, peak.high
        # 12 transactions, 4 at a time: three waves of 0.2 s at least
        assert elapsed >= 0.55, elapsed
        reads = Peak()
        await asyncio.gather(*(session.read(reads.hold, 0.2) for _ in range(12)))
        assert max(reads.high.values()) > 2, reads.high


async def test_a_slot_is_waited_for_at_most_the_analytics_timeout(settings: Settings) -> None:
    overrides = {"analytics_concurrency": 1, "analytics_timeout_ms": 2_000}
    async with running(tuned(settings, FAST, **overrides)) as db:
        session = db.session(principal())
        peak = Peak()
        holders = await hold_every_slot(session, peak, 3.0)
        t0 = time.monotonic()
        late = asyncio.create_task(db.session(principal()).analytics(peak.hold, 0.0))
        # what /metrics reports as dbx_analytics_waiting
        await eventually(lambda: waiting(db) == 1, 5, "one analytics call waiting")
        with pytest.raises(Timeout):
            await late
        waited = time.monotonic() - t0
        assert waiting(db) == 0
        assert waited >= 1.9, waited
        # it gave up at the timeout, not when a slot freed
        assert not any(h.done() for h in holders)
        # the holders were not disturbed, and their slots are free again
        assert sorted(await asyncio.gather(*holders)) == ["replica_1", "replica_2"]
        assert await session.analytics(peak.hold, 0.0) in {"replica_1", "replica_2"}


async def _analytics_as(db: Database, peak: Peak, gone: asyncio.Event) -> str:
    """One analytics call of a request whose client leaves when ``gone`` is set."""
    return await db.session(principal(), client_gone=gone.wait).analytics(peak.hold, 0.0)


async def test_a_request_whose_client_left_gives_up_its_place_in_the_queue(
    settings: Settings,
) -> None:
    overrides = {"analytics_concurrency": 1, "analytics_timeout_ms": 10_000}
    async with running(tuned(settings, FAST, **overrides)) as db:
        session = db.session(principal())
        peak = Peak()
        holders = await hold_every_slot(session, peak, 1.5)
        leaves, stays = asyncio.Event(), asyncio.Event()
        left = asyncio.create_task(_analytics_as(db, peak, leaves))
        stayed = asyncio.create_task(_analytics_as(db, peak, stays))
        await eventually(lambda: waiting(db) == 2, 5, "two analytics calls waiting")
        leaves.set()
        with pytest.raises(ClientClosedRequest):
            await left
        assert not any(h.done() for h in holders)  # at once, not when a slot frees
        assert waiting(db) == 1
        # the holders and the request whose client stayed are served as before
        assert sorted(await asyncio.gather(*holders)) == ["replica_1", "replica_2"]
        assert await stayed in {"replica_1", "replica_2"}
        # no slot was lost on the way
        assert not any(
            n.analytics_slots is not None and n.analytics_slots.locked() for n in db.nodes
        )


async def test_zero_lifts_the_limit(settings: Settings) -> None:
    async with running(tuned(settings, FAST, analytics_concurrency=0)) as db:
        peak = Peak()
        session = db.session(principal())
        await asyncio.gather(*(session.analytics(peak.hold, 0.2) for _ in range(12)))
        assert max(peak.high.values()) > 2, peak.high
        assert all(n.analytics_slots is None for n in db.nodes)


def one_slot(settings: Settings, *, timeout_ms: int, slot_min_ms: float) -> Settings:
    """One analytics slot per node, the analytics timeout and the slot
    threshold of a keyed-kind test."""
    return tuned(
        settings,
        FAST,
        analytics_concurrency=1,
        analytics_timeout_ms=timeout_ms,
        analytics_slot_min_ms=slot_min_ms,
    )


async def _select_one(conn: TenantConnection) -> int:
    value: int = await conn.fetchval("select 1")
    return value


async def test_short_kinds_skip_the_slots_long_and_new_ones_wait(settings: Settings) -> None:
    """A keyed kind (a planned statement) whose recent runs took under
    DBX_ANALYTICS_SLOT_MIN_MS on average runs while every slot is taken; a
    kind never seen, or one that takes longer, waits for a slot (here: until
    the analytics timeout)."""
    async with running(one_slot(settings, timeout_ms=1_500, slot_min_ms=200.0)) as db:
        session = db.session(principal())
        assert await session.analytics_keyed("short", _select_one) == 1  # took a slot: unknown
        assert await session.analytics_keyed("long", _sleep_then_one, 0.3) == 1
        runs = db.analytics_runs
        assert runs.typical(_kind(session, "short")) < 0.2 <= runs.typical(_kind(session, "long"))
        holders = await hold_every_slot(session, Peak(), 2.5)
        assert await session.analytics_keyed("short", _select_one) == 1
        assert not any(h.done() for h in holders)  # it did not wait for a slot
        waited = await asyncio.gather(
            *(session.analytics_keyed(kind, _select_one) for kind in ("long", "never-seen")),
            return_exceptions=True,
        )
        assert [type(w) for w in waited] == [Timeout, Timeout], waited
        # a failed run is not a short one: it did not count
        assert db.analytics_runs.typical(_kind(session, "never-seen")) == float("inf")
        await asyncio.gather(*holders)


def _kind(session: DbSession, key: str) -> tuple[uuid.UUID, str]:
    """How ``Database`` keys a kind's runs: per org."""
    return (session.tenant.org_id, key)


async def test_one_orgs_short_kind_is_not_short_for_another(settings: Settings) -> None:
    """Runs are timed per org: another org's first run of a key that is
    short for one org waits for a slot like any kind never seen."""
    async with running(one_slot(settings, timeout_ms=1_000, slot_min_ms=200.0)) as db:
        small = db.session(principal())
        for _ in range(2):
            assert await small.analytics_keyed("short", _select_one) == 1
        holders = await hold_every_slot(small, Peak(), 2.0)
        assert await small.analytics_keyed("short", _select_one) == 1  # no slot needed
        with pytest.raises(Timeout):
            await db.session(principal()).analytics_keyed("short", _select_one)
        await asyncio.gather(*holders)


async def test_one_request_runs_one_analytics_transaction_at_once(settings: Settings) -> None:
    """DBX_ANALYTICS_PER_REQUEST=1: a request's concurrent analytics (aliased
    fields) run one after another; another request meanwhile gets a slot."""
    overrides = {"analytics_per_request": 1, "analytics_concurrency": 2}
    async with running(tuned(settings, FAST, **overrides)) as db:
        running_now, high = 0, 0
        started = asyncio.Event()

        async def field(conn: TenantConnection) -> None:
            nonlocal running_now, high
            running_now += 1
            high = max(high, running_now)
            started.set()
            try:
                await conn.fetchval("select pg_sleep(0.2)")
            finally:
                running_now -= 1

        request = db.session(principal())
        fields = [asyncio.create_task(request.analytics(field)) for _ in range(4)]
        await asyncio.wait_for(started.wait(), 10)
        await db.session(principal()).analytics(_select_one)
        # served while the request's fields (0.2 s each, one at a time) still run
        fields_done = sum(f.done() for f in fields)
        await asyncio.gather(*fields)
        assert high == 1, high  # never two at once, on any node
        assert fields_done <= 1, fields_done


async def _sleep_then_one(conn: TenantConnection, seconds: float) -> int:
    await conn.fetchval("select pg_sleep($1)", seconds)
    return 1


async def test_slot_min_zero_makes_every_kind_wait(settings: Settings) -> None:
    async with running(one_slot(settings, timeout_ms=1_000, slot_min_ms=0.0)) as db:
        session = db.session(principal())
        assert await session.analytics_keyed("short", _select_one) == 1
        holders = await hold_every_slot(session, Peak(), 2.0)
        with pytest.raises(Timeout):
            await session.analytics_keyed("short", _select_one)
        await asyncio.gather(*holders)
