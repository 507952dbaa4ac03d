"""More catalog cases over HTTP against served gateways: CSRF-shaped
requests (G8), unknown ``kid`` and future ``nbf`` (J1/J2), pool saturation
with a one-connection pool (L1) and a black-holed replica (R3).

Owns: the gateways it serves for L1 and R3 (module-scoped subprocesses with
their own settings), and the orgs and rows it creates. R3 freezes replica_2
with SIGSTOP and always sends SIGCONT in ``finally``; nothing else is
stopped or changed on the stack.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from tests.e2e.conftest import _served, count_on
from tests.e2e.fleet_data import seed_fleet
from tests.support.wait import eventually, wait_replicated

CREATE = (
    "mutation($r: String!) { createAircraft(input: {registration: $r,"
    ' manufacturer: "Cessna", model: "172"}) { id version } }'
)
UPDATE = (
    "mutation($id: ID!, $v: Int!, $m: String) {"
    " updateAircraft(id: $id, expectedVersion: $v, input: {model: $m}) { id version } }"
)
FLEET = "query Fleet($first: Int!) { fleet(first: $first) { edges { node { id registration } } } }"


async def _aircraft_count(owner_dsn: str, org: uuid.UUID) -> int:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return int(
            await conn.fetchval("select count(*) from dbx_aviation.aircraft where org_id = $1", org)
        )
    finally:
        await conn.close()


# -- G8 CSRF -------------------------------------------------------------------


async def test_simple_request_content_types_cannot_carry_a_mutation(
    client: httpx.AsyncClient, token: Callable[..., str], make_org: Any, owner_dsn: str
) -> None:
    org = await make_org()
    auth = {"authorization": f"Bearer {token(org, 'operator')}"}
    body = '{"query": "mutation { createAircraft(input: {registration: \\"CSRF-1\\",'
    body += ' manufacturer: \\"X\\", model: \\"Y\\"}) { id } }"}'
    attempts = [
        # what a form or fetch() without preflight can send cross-site
        client.post("/graphql", content=body, headers={**auth, "content-type": "text/plain"}),
        client.post("/graphql", content=body, headers=auth),  # no content type at all
        client.post("/graphql", data={"query": body}, headers=auth),  # url-encoded
        client.post(
            "/graphql",
            data={"operations": body, "map": "{}"},
            files={"0": ("a.txt", b"x", "text/plain")},
            headers=auth,
        ),  # multipart, as the GraphQL upload spec sends it
    ]
    for r in await asyncio.gather(*attempts):
        assert r.status_code in (400, 415), (r.status_code, r.text)
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    get = await client.get(
        "/graphql",
        params={
            "query": 'mutation { createAircraft(input: {registration: "CSRF-2",'
            ' manufacturer: "X", model: "Y"}) { id } }'
        },
        headers=auth,
    )
    assert get.status_code == 405 and get.headers["allow"] == "POST", get.text
    assert await _aircraft_count(owner_dsn, org) == 0
    # the same mutation as JSON does write: the refusals above were not an accident
    ok = await client.post(
        "/graphql", json={"query": CREATE, "variables": {"r": "CSRF-3"}}, headers=auth
    )
    assert ok.status_code == 200 and "errors" not in ok.json(), ok.text
    assert await _aircraft_count(owner_dsn, org) == 1


# -- J1 unknown kid, J2 nbf ------------------------------------------------------


def _b64(d: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def _claims(settings: Any, org: uuid.UUID, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    c: dict[str, Any] = {
        "sub": "e2e-j",
        "org_id": str(org),
        "roles": ["viewer"],
        "iat": now,
        "exp": now + 600,
    }
    if settings.jwt_issuer:
        c["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        c["aud"] = settings.jwt_audience
    c.update(over)
    return c


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_kid", 200),
        ("unknown_kid", 401),
        ("kid_not_a_string", 401),
        ("nbf_now", 200),
        ("nbf_within_leeway", 200),
        ("nbf_in_90s", 401),
        ("nbf_in_an_hour", 401),
        ("iat_in_an_hour", 401),
    ],
)
async def test_kid_and_not_before(
    case: str, expected: int, client: httpx.AsyncClient, settings: Any, make_org: Any
) -> None:
    org = await make_org()
    secret = settings.jwt_secret
    now = int(time.time())
    headers: dict[str, Any] | None = None
    claims = _claims(settings, org)
    if case == "unknown_kid":
        headers = {"kid": "rotated-away-2024"}
    elif case == "nbf_now":
        claims["nbf"] = now
    elif case == "nbf_within_leeway":
        claims["nbf"] = now + 10
    elif case == "nbf_in_90s":
        claims["nbf"] = now + 90  # beyond any leeway the gateway may allow (<= 60 s)
    elif case == "nbf_in_an_hour":
        claims["nbf"] = now + 3600
    elif case == "iat_in_an_hour":
        claims["iat"] = now + 3600
    if case == "kid_not_a_string":  # PyJWT will not encode it; sign by hand
        head = _b64({"alg": "HS256", "typ": "JWT", "kid": ["a"]})
        signing = f"{head}.{_b64(claims)}"
        sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
        bearer = f"{signing}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"
    else:
        bearer = jwt.encode(claims, secret, algorithm="HS256", headers=headers)
    r = await client.post(
        "/graphql",
        json={"query": "{ viewer { orgId } }"},
        headers={"authorization": f"Bearer {bearer}"},
    )
    assert r.status_code == expected, r.text
    if expected == 401:
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "data" not in r.json()


# -- L1 pool saturation -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pool_url() -> Iterator[str]:
    yield from _served(
        {
            "DBX_POOL_MIN_SIZE": "1",
            "DBX_POOL_MAX_SIZE": "1",
            "DBX_CONNECT_TIMEOUT_S": "0.5",
            "DBX_WRITE_TIMEOUT_MS": "4000",
        }
    )


@pytest.mark.slow
async def test_saturated_pool_answers_fast_503_and_recovers(
    tiny_pool_url: str, token: Callable[..., str], make_org: Any, owner_dsn: str
) -> None:
    org = await make_org()
    auth = {"authorization": f"Bearer {token(org, 'operator')}"}
    async with httpx.AsyncClient(base_url=tiny_pool_url, timeout=30) as c:
        created = await c.post(
            "/graphql", json={"query": CREATE, "variables": {"r": "POOL-1"}}, headers=auth
        )
        aircraft = created.json()["data"]["createAircraft"]
        # A row lock held by the owner keeps the single primary connection busy
        # in the first update; every other write must wait for the pool.
        locker = await asyncpg.connect(owner_dsn)
        lock_tx = locker.transaction()
        await lock_tx.start()
        try:
            await locker.execute(
                "select 1 from dbx_aviation.aircraft where id = $1 for update",
                uuid.UUID(aircraft["id"]),
            )

            async def one(i: int) -> tuple[int, float, httpx.Response]:
                t0 = time.monotonic()
                r = await c.post(
                    "/graphql",
                    json={
                        "query": UPDATE,
                        "variables": {"id": aircraft["id"], "v": aircraft["version"], "m": f"M{i}"},
                    },
                    headers=auth,
                )
                return r.status_code, time.monotonic() - t0, r

            first = asyncio.create_task(one(0))
            # the first one holds the connection now, waiting for the row lock
            blocked = (
                "select count(*) from pg_stat_activity where "
                f"{await locker.fetchval('select pg_backend_pid()')} = any(pg_blocking_pids(pid))"
            )
            await eventually(lambda: count_on(owner_dsn, blocked), 10, "the first update blocked")
            flood = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1, 11))), 15)
        finally:
            await lock_tx.rollback()
            await locker.close()
        status0, took0, r0 = await asyncio.wait_for(first, 10)
    busy = [(s, t, r) for s, t, r in flood if s == 503]
    assert len(busy) >= 5, [(s, round(t, 2), r.text[:120]) for s, t, r in flood]
    for _s, took, r in busy:
        assert took < 2.0, took  # the pool wait, not PgBouncer's query_wait_timeout
        assert r.headers.get("retry-after"), r.headers
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    # the one holding the connection finished once the lock went (or timed out; never hung)
    assert status0 in (200, 409, 503, 504), r0.text
    assert took0 < 6.0
    # afterwards the gateway serves normally, reads and writes (the one
    # connection may first have to be re-established: allow a short while)
    async with httpx.AsyncClient(base_url=tiny_pool_url, timeout=10) as c:

        async def settled(body: dict[str, Any]) -> httpx.Response:
            for _ in range(20):
                r = await c.post("/graphql", json=body, headers=auth)
                if r.status_code != 503:
                    return r
                await asyncio.sleep(0.2)
            return r

        for i in range(3):
            r = await settled({"query": FLEET, "variables": {"first": 5}})
            assert r.status_code == 200 and "errors" not in r.json(), r.text
            w = await settled({"query": CREATE, "variables": {"r": f"POOL-{i + 2}"}})
            assert w.status_code == 200 and "errors" not in w.json(), w.text


# -- R3 black-holed replica ---------------------------------------------------------

READ_TIMEOUT_MS = 1000


@pytest.fixture(scope="module")
def short_read_url() -> Iterator[str]:
    yield from _served(
        {
            "DBX_READ_TIMEOUT_MS": str(READ_TIMEOUT_MS),
            "DBX_CONNECT_TIMEOUT_S": "1",
            "DBX_PROBE_INTERVAL_S": "0.5",
            "DBX_BREAKER_COOLDOWN_S": "1",
        }
    )


def _replica_pids(stack: dict[str, Any], name: str) -> list[int]:
    pidfile = Path(stack["stack_dir"]) / "pg" / name / "postmaster.pid"
    postmaster = int(pidfile.read_text().splitlines()[0])
    out = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    )
    return [postmaster] + [int(p) for p in out.stdout.split()]


async def _streaming(stack: dict[str, Any], name: str) -> bool:
    primary = next(n for n in stack["nodes"] if n["role"] == "primary")
    conn = await asyncpg.connect(primary["admin_dsn"], timeout=3)
    try:
        rows = await conn.fetch("select application_name, state from pg_stat_replication")
    finally:
        await conn.close()
    return any(name in r["application_name"] and r["state"] == "streaming" for r in rows)


async def _served_by(c: httpx.AsyncClient, auth: dict[str, str]) -> set[str]:
    rid = f"r3-{uuid.uuid4().hex}"
    r = await c.post(
        "/graphql",
        json={"query": FLEET, "variables": {"first": 3}},
        headers={**auth, "x-request-id": rid},
    )
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    s = await c.get("/_test/statements", params={"request_id": rid})
    return {line.split(":", 1)[0] for line in s.json()["statements"]}


@pytest.mark.slow
async def test_frozen_replica_costs_no_read_and_is_used_again(
    short_read_url: str,
    stack: dict[str, Any],
    token: Callable[..., str],
    make_org: Any,
    owner_dsn: str,
) -> None:
    org = await make_org()
    await seed_fleet(owner_dsn, org, aircraft=5, flights_each=1, prefix="BH")
    await wait_replicated(stack)
    auth = {"authorization": f"Bearer {token(org, 'viewer')}"}
    deadline_s = READ_TIMEOUT_MS / 1000 * 2 + 2.5  # a timed-out try, a retry, and margin
    results: list[tuple[bool, float, str]] = []
    async with httpx.AsyncClient(base_url=short_read_url, timeout=60) as c:
        nodes_before: set[str] = set()
        for _ in range(20):
            nodes_before |= await _served_by(c, auth)
        assert "replica_2" in nodes_before, nodes_before  # it was in use before the fault
        pids = _replica_pids(stack, "replica_2")
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            end = time.monotonic() + 8

            async def reader() -> None:
                while time.monotonic() < end:
                    t0 = time.monotonic()
                    r = await c.post(
                        "/graphql", json={"query": FLEET, "variables": {"first": 3}}, headers=auth
                    )
                    took = time.monotonic() - t0
                    ok = r.status_code == 200 and "errors" not in r.json()
                    results.append((ok, took, r.text[:160]))

            await asyncio.wait_for(asyncio.gather(*(reader() for _ in range(4))), 60)
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        failed = [x for x in results if not x[0]]
        slow = [x for x in results if x[1] > deadline_s]
        assert len(results) >= 8
        assert failed == [], failed[:5]
        assert slow == [], slow[:5]
        # the replica streams again and the gateway sends reads to it again
        t_end = time.monotonic() + 30
        while not await _streaming(stack, "replica_2"):
            assert time.monotonic() < t_end, "replica_2 does not stream again"
            await asyncio.sleep(0.5)
        used: set[str] = set()
        while "replica_2" not in used:
            assert time.monotonic() < t_end, f"replica_2 not used again: {used}"
            used |= await _served_by(c, auth)
            await asyncio.sleep(0.05)
