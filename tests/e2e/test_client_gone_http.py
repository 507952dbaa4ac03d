"""An analytics request whose client disconnects leaves the slot queue, or
has its running statement cancelled in PostgreSQL (``CLIENT_CLOSED_REQUEST``,
counted as 499), instead of running for nobody, on the real server: uvicorn,
a real socket that closes, one replica with one slot.

The slot is held by a request whose statement waits on a lock: an ``ACCESS
EXCLUSIVE`` lock taken on the primary is replayed by the replica, and every
query there that reads the table waits until the primary lets it go.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import _served
from tests.support.orgs import OrgFactory
from tests.support.wait import eventually, wait_replicated

FLEET_STATS = "query($since: DateTime!) { analytics { fleetStats(since: $since) { aircraftId } } }"


@pytest.fixture(scope="module")
def one_slot_url(stack: dict[str, Any]) -> Iterator[str]:
    replica = stack["dsns"]["gateway_replicas"][0]
    yield from _served(
        {
            "DBX_REPLICA_DSNS": replica,
            "DBX_ANALYTICS_CONCURRENCY": "1",
            "DBX_ANALYTICS_SLOT_MIN_MS": "0",  # every analytics request takes a slot
        }
    )


def _metric(text: str, name: str, labels: str) -> float:
    want = dict(re.findall(r'(\w+)="([^"]*)"', labels))  # in any order
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == want:
                return float(s.value)
    return 0.0


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _replica_holds_lock(dsn: str) -> bool:
    """Whether the replica has replayed the primary's lock on flights."""
    held = await _count(
        dsn,
        "select count(*) from pg_locks where relation = 'dbx_aviation.flights'::regclass"
        " and mode = 'AccessExclusiveLock' and granted",
    )
    return held > 0


async def _waiting_statements(dsn: str) -> int:
    """The gateway's statements on the replica that wait on a lock."""
    return await _count(
        dsn,
        "select count(*) from pg_stat_activity where usename = 'dbx_gateway'"
        " and state = 'active' and wait_event_type = 'Lock'",
    )


GONE = 'route="/graphql",method="POST",status="499"'
WAITING = 'node="replica_1"'


class Scene:
    """The one-slot gateway, an analyst of a fresh org, and the lock."""

    def __init__(self, url: str, stack: dict[str, Any], bearer: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30)
        self.port = int(url.rsplit(":", 1)[1])
        self.headers = {"authorization": f"Bearer {bearer}", "content-type": "application/json"}
        self.body = orjson.dumps(
            {"query": FLEET_STATS, "variables": {"since": "2026-01-01T00:00:00Z"}}
        )
        self.primary = next(n["admin_dsn"] for n in stack["nodes"] if n["role"] == "primary")
        self.replica = next(n["admin_dsn"] for n in stack["nodes"] if n["name"] == "replica_1")

    async def metric(self, name: str, labels: str) -> float:
        return _metric((await self.client.get("/metrics")).text, name, labels)

    async def post(self) -> httpx.Response:
        return await self.client.post("/graphql", content=self.body, headers=self.headers)

    async def send_and_keep(self) -> asyncio.StreamWriter:
        """The request over a raw socket, left open: closing it is leaving."""
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        writer.write(
            b"POST /graphql HTTP/1.1\r\nhost: x\r\n"
            + f"{head}content-length: {len(self.body)}\r\n\r\n".encode()
            + self.body
        )
        await writer.drain()
        return writer

    @contextlib.asynccontextmanager
    async def flights_locked(self) -> AsyncIterator[None]:
        """An ACCESS EXCLUSIVE lock on flights, held on the primary and
        replayed by the replica: queries there reading flights wait."""
        locker = await asyncpg.connect(self.primary)
        tx = locker.transaction()
        await tx.start()
        try:
            await locker.execute("lock table dbx_aviation.flights in access exclusive mode")
            # the lock's WAL record sits in a page not yet flushed: a commit
            # elsewhere (one that took a transaction id) flushes it
            flusher = await asyncpg.connect(self.primary)
            try:
                await flusher.execute("select txid_current()")
            finally:
                await flusher.close()
            await eventually(lambda: _replica_holds_lock(self.replica), what="the replayed lock")
            yield
        finally:
            await tx.rollback()
            await locker.close()


@pytest.fixture
async def scene(
    one_slot_url: str, token: Callable[..., str], make_org: OrgFactory, stack: dict[str, Any]
) -> AsyncIterator[Scene]:
    org = await make_org()
    await wait_replicated(stack)
    s = Scene(one_slot_url, stack, token(org, "analyst"))
    try:
        yield s
    finally:
        await s.client.aclose()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def test_a_client_that_leaves_gives_up_its_place_in_the_analytics_queue(
    scene: Scene,
) -> None:
    before = await scene.metric("dbx_http_requests_total", GONE)
    async with scene.flights_locked():
        # holds the only slot: its statement waits on the replayed lock
        holder = asyncio.create_task(scene.post())
        await eventually(lambda: _statement_waits(scene), what="the statement waiting")
        writer = await scene.send_and_keep()

        async def queued() -> bool:
            return await scene.metric("dbx_analytics_waiting", WAITING) == 1

        await eventually(queued, what="one request queued for the slot")
        await _close(writer)

        async def left() -> bool:
            return (
                await scene.metric("dbx_http_requests_total", GONE) == before + 1
                and await scene.metric("dbx_analytics_waiting", WAITING) == 0
            )

        # while the slot is still held: the request left the queue, it did not wait its turn
        await eventually(left, what="the request that left counted as 499")
        assert not holder.done()
    answer = await holder
    assert answer.status_code == 200, answer.text
    assert "errors" not in answer.json()
    # the slot is free again: the next request is served
    again = await scene.post()
    assert again.status_code == 200, again.text


async def _statement_waits(scene: Scene) -> bool:
    return await _waiting_statements(scene.replica) == 1


async def test_a_client_that_leaves_has_its_running_statement_cancelled(scene: Scene) -> None:
    before = await scene.metric("dbx_http_requests_total", GONE)
    async with scene.flights_locked():
        writer = await scene.send_and_keep()
        await eventually(lambda: _statement_waits(scene), what="the statement waiting")
        await _close(writer)

        async def cancelled() -> bool:
            return (
                await _waiting_statements(scene.replica) == 0
                and await scene.metric("dbx_http_requests_total", GONE) == before + 1
            )

        # the lock is still held: the statement did not end by itself
        await eventually(cancelled, what="the statement cancelled")
    # the slot and the connection are fine: the next request is served
    answer = await scene.post()
    assert answer.status_code == 200, answer.text
    assert "errors" not in answer.json()
