"""An analytics request whose client disconnects while it waits for an
analytics slot leaves the queue (``CLIENT_CLOSED_REQUEST``, counted as 499)
instead of running for nobody, on the real server: uvicorn, a real socket
that closes, one replica with one slot.

The slot is held by a request whose statement waits on a lock: an ``ACCESS
EXCLUSIVE`` lock taken on the primary is replayed by the replica, and every
query there that reads the table waits until the primary lets it go.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import OrgFactory
from tests.e2e.conftest import _served, wait_replicated

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
    pattern = rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$"
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


async def _until(check: Callable[[], Any], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _replica_holds_lock(dsn: str) -> bool:
    """Whether the replica has replayed the primary's lock on flights."""
    conn = await asyncpg.connect(dsn)
    try:
        held = await conn.fetchval(
            "select count(*) from pg_locks where relation = 'dbx_aviation.flights'::regclass"
            " and mode = 'AccessExclusiveLock' and granted"
        )
    finally:
        await conn.close()
    return bool(held)


async def test_a_client_that_leaves_gives_up_its_place_in_the_analytics_queue(
    one_slot_url: str,
    token: Callable[..., str],
    make_org: OrgFactory,
    stack: dict[str, Any],
) -> None:
    org = await make_org()
    await wait_replicated(stack)
    auth = {"authorization": f"Bearer {token(org, 'analyst')}"}
    body = orjson.dumps({"query": FLEET_STATS, "variables": {"since": "2026-01-01T00:00:00Z"}})
    primary = next(n["admin_dsn"] for n in stack["nodes"] if n["role"] == "primary")
    replica = next(n["admin_dsn"] for n in stack["nodes"] if n["name"] == "replica_1")
    port = int(one_slot_url.rsplit(":", 1)[1])
    gone_label = 'route="/graphql",method="POST",status="499"'
    waiting_label = 'node="replica_1"'

    async with httpx.AsyncClient(base_url=one_slot_url, timeout=30) as client:

        async def metrics() -> str:
            return (await client.get("/metrics")).text

        before = _metric(await metrics(), "dbx_http_requests_total", gone_label)
        locker = await asyncpg.connect(primary)
        tx = locker.transaction()
        await tx.start()
        try:
            await locker.execute("lock table dbx_aviation.flights in access exclusive mode")
            # the lock's WAL record sits in a page not yet flushed: a commit
            # elsewhere (one that took a transaction id) flushes it
            flusher = await asyncpg.connect(primary)
            try:
                await flusher.execute("select txid_current()")
            finally:
                await flusher.close()
            await _until(lambda: _replica_holds_lock(replica))
            # holds the only slot: its statement waits on the replayed lock
            holder = asyncio.create_task(
                client.post(
                    "/graphql", content=body, headers={**auth, "content-type": "application/json"}
                )
            )
            await asyncio.sleep(0.5)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + f"authorization: {auth['authorization']}\r\n".encode()
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

            async def queued() -> bool:
                return _metric(await metrics(), "dbx_analytics_waiting", waiting_label) == 1

            await _until(queued)
            writer.close()
            await writer.wait_closed()

            async def left() -> bool:
                text = await metrics()
                return (
                    _metric(text, "dbx_http_requests_total", gone_label) == before + 1
                    and _metric(text, "dbx_analytics_waiting", waiting_label) == 0
                )

            # while the slot is still held: the request left the queue, it did not wait its turn
            await _until(left)
            assert not holder.done()
        finally:
            await tx.rollback()
            await locker.close()
        answer = await holder
        assert answer.status_code == 200, answer.text
        assert "errors" not in answer.json()
        # the slot is free again: the next request is served
        again = await client.post(
            "/graphql", content=body, headers={**auth, "content-type": "application/json"}
        )
        assert again.status_code == 200, again.text
