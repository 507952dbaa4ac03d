"""Hostile clients against analytics admission and consistency tokens, on
the real server (uvicorn, one replica behind PgBouncer).

Admission (``DBX_ANALYTICS_CONCURRENCY``) must hold whatever the history of
a statement: a cheap run must not let later heavy runs of the same document
skip the slots, one org's history must not let another org's statement skip,
and one request's aliased analytics fields must not hold every slot.

A "heavy" run is made here by an ``ACCESS EXCLUSIVE`` lock on flights taken
on the primary and replayed by the replica: every analytics statement that
reads flights waits there, active in ``pg_stat_activity``, until the lock
goes. Those waiting statements are the analytics transactions the gateway
admitted at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.config import Settings
from tests.conftest import OrgFactory
from tests.e2e.conftest import _served, count_on, replayed_lock, wait_replicated

ADMISSION_SLOTS = 2  # DBX_ANALYTICS_CONCURRENCY of the gateway under test
ADMISSION_POOL = 4  # DBX_POOL_MAX_SIZE: heavy runs beyond it would starve reads
ADMISSION_HEAVY = 6  # concurrent heavy requests each test sends
ADMISSION_FLEET_STATS = (
    "query($since: DateTime!) { analytics { fleetStats(since: $since) { aircraftId } } }"
)
ADMISSION_READ = "{ fleet(first: 1) { totalCount } }"
ADMISSION_WAITERS = (
    "select count(*) from pg_stat_activity where usename = 'dbx_gateway'"
    " and state = 'active' and wait_event_type = 'Lock'"
)


@pytest.fixture(scope="module")
def admission_url(stack: dict[str, Any]) -> Iterator[str]:
    """A gateway on one replica with two analytics slots and a small pool;
    a statement text whose runs took under a second counts as short."""
    replica = stack["dsns"]["gateway_replicas"][0]
    yield from _served(
        {
            "DBX_REPLICA_DSNS": replica,
            "DBX_ANALYTICS_CONCURRENCY": str(ADMISSION_SLOTS),
            "DBX_ANALYTICS_SLOT_MIN_MS": "1000",
            "DBX_POOL_MAX_SIZE": str(ADMISSION_POOL),
        }
    )


def _admission_metric(text: str, name: str, labels: str) -> float:
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


class AdmissionScene:
    def __init__(self, url: str, stack: dict[str, Any], token: Callable[..., str]) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=60)
        self.token = token
        self.primary = next(n["admin_dsn"] for n in stack["nodes"] if n["role"] == "primary")
        self.replica = next(n["admin_dsn"] for n in stack["nodes"] if n["name"] == "replica_1")

    async def post(
        self, org: uuid.UUID, role: str, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(org, role)}"}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    async def fleet_stats(self, org: uuid.UUID, since: dt.datetime) -> httpx.Response:
        return await self.post(org, "analyst", ADMISSION_FLEET_STATS, {"since": since.isoformat()})

    async def queued(self) -> float:
        """Requests of this gateway waiting for an analytics slot or a
        pooled connection on the replica."""
        text = (await self.client.get("/metrics")).text
        return sum(
            _admission_metric(text, name, 'node="replica_1"')
            for name in ("dbx_analytics_waiting", "dbx_pool_waiting")
        )

    async def waiting(self, extra: str = "") -> int:
        """The gateway's statements on the replica waiting on the lock."""
        return await count_on(self.replica, ADMISSION_WAITERS + extra)

    def locked(self) -> Any:
        return replayed_lock(self.primary, self.replica, "dbx_aviation.flights")


@pytest.fixture
async def admission(
    admission_url: str, token: Callable[..., str], stack: dict[str, Any]
) -> AsyncIterator[AdmissionScene]:
    scene = AdmissionScene(admission_url, stack, token)
    try:
        yield scene
    finally:
        await scene.client.aclose()


async def _admission_orgs(make_org: OrgFactory, stack: dict[str, Any], n: int) -> list[uuid.UUID]:
    orgs = [await make_org() for _ in range(n)]
    await wait_replicated(stack)
    return orgs


async def _admitted_at_once(scene: AdmissionScene, sent: int, bound: int) -> int:
    """The most heavy statements seen running at once, polled until all
    ``sent`` requests run or wait, or more than ``bound`` run."""
    peak = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = await scene.waiting()
        peak = max(peak, running)
        if running > bound or running + await scene.queued() >= sent:
            break
        await asyncio.sleep(0.05)
    return peak


async def _heavy_runs_after_cheap_ones(
    scene: AdmissionScene,
    cheap_org: uuid.UUID,
    heavy_org: uuid.UUID,
    reader_org: uuid.UUID,
    cheap_since: dt.datetime,
    heavy_since: dt.datetime,
    bound: int,
) -> tuple[int, int, float]:
    """Cheap runs first, then ``ADMISSION_HEAVY`` concurrent heavy ones; the
    heavy statements admitted at once, and the status and seconds of a read
    of another org meanwhile."""
    for _ in range(2):  # a recorded history: the statement text ran short
        r = await scene.fleet_stats(cheap_org, cheap_since)
        assert r.status_code == 200 and "errors" not in r.json(), r.text
    async with scene.locked():
        heavy = [
            asyncio.create_task(scene.fleet_stats(heavy_org, heavy_since))
            for _ in range(ADMISSION_HEAVY)
        ]
        peak = await _admitted_at_once(scene, ADMISSION_HEAVY, bound)
        t0 = time.monotonic()
        read = await scene.post(reader_org, "viewer", ADMISSION_READ)
        read_s = time.monotonic() - t0
    answers = await asyncio.gather(*heavy)
    assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers]
    return peak, read.status_code, read_s


@pytest.mark.parametrize("window", ["wider", "same"])
async def test_item5_a_cheap_run_does_not_let_heavy_runs_skip_the_slots(
    admission: AdmissionScene, make_org: OrgFactory, stack: dict[str, Any], window: str
) -> None:
    """One cheap run of a planned document must not let concurrent heavy runs
    of it (a 365-day window, or the same arguments turned slow) fill the
    replica's pool: a wider window is a statement never timed, so it takes
    a slot; the same arguments skip only within the slot-free allowance,
    which keeps a pooled connection for reads. Reads of another org are
    served meanwhile."""
    org, reader = await _admission_orgs(make_org, stack, 2)
    now = dt.datetime.now(dt.UTC)
    cheap_since = now - dt.timedelta(days=1)
    if window == "wider":
        heavy_since, bound = now - dt.timedelta(days=365), ADMISSION_SLOTS
    else:
        heavy_since, bound = cheap_since, ADMISSION_POOL - 1
    peak, read_status, read_s = await _heavy_runs_after_cheap_ones(
        admission, org, org, reader, cheap_since, heavy_since, bound
    )
    assert peak <= bound and read_status == 200 and read_s < 1.0, (
        f"heavy statements at once {peak} (bound {bound}), read {read_status} in {read_s:.2f} s"
    )


async def test_item5_one_orgs_cheap_runs_do_not_let_another_orgs_skip(
    admission: AdmissionScene, make_org: OrgFactory, stack: dict[str, Any]
) -> None:
    """A small org's cheap runs of a document must not mark a large org's
    run of the same document (same arguments) as short."""
    small, large, reader = await _admission_orgs(make_org, stack, 3)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    peak, read_status, read_s = await _heavy_runs_after_cheap_ones(
        admission, small, large, reader, since, since, ADMISSION_SLOTS
    )
    assert peak <= ADMISSION_SLOTS and read_status == 200 and read_s < 1.0, (
        f"heavy statements at once {peak} (bound {ADMISSION_SLOTS}),"
        f" read {read_status} in {read_s:.2f} s"
    )


async def test_item5_aliased_analytics_fields_share_their_requests_slot(
    admission: AdmissionScene, make_org: OrgFactory, stack: dict[str, Any]
) -> None:
    """One request with 30 aliased ``fleetRiskProfile`` fields holds at most
    one analytics slot (``DBX_ANALYTICS_PER_REQUEST``): another request
    still gets a slot while they run."""
    hog, other = await _admission_orgs(make_org, stack, 2)
    fields = " ".join(f"r{i}: fleetRiskProfile(limit: 1) {{ aircraftId }}" for i in range(30))
    fleet_stats = " and query like '%fleet_stats(%'"
    hog_statements = " and query like '%flights f%'"
    async with admission.locked():
        hog_task = asyncio.create_task(
            admission.post(hog, "analyst", f"{{ analytics {{ {fields} }} }}")
        )
        deadline = time.monotonic() + 10
        hog_peak = 0
        while time.monotonic() < deadline and not hog_peak:
            hog_peak = await admission.waiting(hog_statements)
            await asyncio.sleep(0.05)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        other_task = asyncio.create_task(admission.fleet_stats(other, since))
        deadline = time.monotonic() + 10
        other_running = 0
        while time.monotonic() < deadline and not other_running:
            other_running = await admission.waiting(fleet_stats)
            hog_peak = max(hog_peak, await admission.waiting(hog_statements))
            await asyncio.sleep(0.05)
    hog_answer, other_answer = await asyncio.gather(hog_task, other_task)
    assert (hog_peak, other_running) == (1, 1), (
        f"slots held by the 30-field request {hog_peak}, by the other request {other_running}"
    )
    assert other_answer.status_code == 200, other_answer.text
    assert hog_answer.status_code == 200, hog_answer.text[:500]
    assert len(hog_answer.json()["data"]["analytics"]) == 30


def _admission_signed(settings: Settings, body: str) -> str:
    """A consistency token for ``body`` signed with the deployment's key,
    as ``Database.make_token`` signs."""
    material = (settings.jwt_secret or settings.jwt_public_key or "").encode()
    key = hashlib.sha256(b"dbx-consistency\0" + material).digest()
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:16]
    return f"1.{body}.{mac}"


@pytest.mark.parametrize("body", ["ffffffffffffffff", "8000000000000000", "+7f", "0x1f", "-1"])
async def test_item9_a_token_lsn_outside_bigint_is_ignored(
    admission: AdmissionScene,
    make_org: OrgFactory,
    stack: dict[str, Any],
    settings: Settings,
    body: str,
) -> None:
    """A consistency token whose LSN is not 0..2^63-1 in plain lower-case hex
    (signed, so only a holder of the key could make one) is ignored like a
    forged one: the read answers 200 and no pooled connection is dropped."""
    (org,) = await _admission_orgs(make_org, stack, 1)

    async def pool_size() -> float:
        text = (await admission.client.get("/metrics")).text
        return _admission_metric(text, "dbx_pool_size", 'node="replica_1"')

    r = await admission.post(org, "viewer", ADMISSION_READ)  # the pool is warm
    assert r.status_code == 200, r.text
    before = await pool_size()
    headers = {
        "authorization": f"Bearer {admission.token(org, 'viewer')}",
        "x-dbx-consistency": _admission_signed(settings, body),
    }
    r = await admission.client.post("/graphql", json={"query": ADMISSION_READ}, headers=headers)
    after = await pool_size()
    assert (r.status_code, after) == (200, before), (r.status_code, r.text[:300], before, after)
    assert "errors" not in r.json()
