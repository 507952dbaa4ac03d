"""Hostile clients: one test (or a few) per item of the hostile-client
review, each measuring what its fix protects, against served gateways on the
real stack (uvicorn, real sockets, PgBouncer, primary and replicas).

| item | what a hostile client did | tests here |
| --- | --- | --- |
| 1 | error messages quoting huge whitespace (quadratic regex) | ``test_item1_*`` |
| 2 | stalled NDJSON uploads holding primary transactions and locks | ``test_item2_*`` |
| 3 | NDJSON bodies of millions of bad lines, or one endless line | ``test_item3_*`` |
| 4 | padded query texts filling the document and plan caches | ``test_item4_*`` |
| 5 | analytics admission skipped through history, orgs and aliases | ``test_item5_*`` |
| 6 | anonymous ``/readyz`` and ``/metrics`` naming internals | ``test_item6_*`` |
| 7 | retention deleting a re-sent point it never archived | ``test_item7_*`` |
| 8 | one point in a month without a partition failing its batch | ``test_item8_*`` |
| 9 | out-of-range dates and consistency-token LSNs answering 500 | ``test_item9_*`` |
| 10 | a multi-field mutation committing field by field | ``test_item10_*`` |
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
import pytest

from gateway.admin.maintain import maintain_report
from gateway.admin.migrate import migrate
from gateway.api.ingest import INGEST_CHUNK
from gateway.config import Settings, local_stack_dsns
from tests.e2e.conftest import (
    PROD_JWT_SECRET,
    PROD_OPS_TOKEN,
    Api,
    HealthWatch,
    ServedGateway,
    _free_port,
    _serve,
    _served,
    count_on,
    peak_rss_bytes,
    replayed_lock,
    reset_peak_rss,
    rss_bytes,
)
from tests.support.orgs import OrgFactory, ScratchFactory, org_with_telemetry, stored_points
from tests.support.wait import eventually, wait_replicated

# == api: Hostile clients of the GraphQL layer: messages quoting huge user
# input (the suggestion stripping must stay linear), padded query texts
# filling the per-worker caches, dates at the edges of the calendar, and
# mutation documents with several fields (refused before any resolver runs).

# -- item 1: messages quoting a huge run of whitespace ------------------------------

HOSTILE_SPACES = 100_000  # 0.1 MB of the 1 MB body limit


def _worker_cpu_s(pid: int) -> float:
    """User + system CPU seconds the worker has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime (clock ticks)


async def test_item1_quoted_whitespace_keeps_the_worker_responsive(
    prod_gateway: ServedGateway, prod_token: Callable[..., str], make_org
) -> None:
    """A syntax error quoting a huge string of spaces and a DateTime variable
    made of spaces are answered BAD_USER_INPUT without freezing the worker:
    /healthz keeps answering within 100 ms, and no "Did you mean" hint
    leaks in prod."""
    org = await make_org()
    headers = {"authorization": f"Bearer {prod_token(org, 'analyst')}"}
    spaces = " " * HOSTILE_SPACES
    payloads: list[dict[str, Any]] = [
        {"query": '{ fleet "' + spaces + '" }'},
        {
            "query": "query($t: DateTime!) { analytics { fleetStats(since: $t) { flights } } }",
            "variables": {"t": spaces},
        },
    ]
    async with httpx.AsyncClient(base_url=prod_gateway.url, timeout=600) as c:
        for payload in payloads:
            cpu0 = _worker_cpu_s(prod_gateway.pid)
            async with HealthWatch(prod_gateway.url) as watch:
                r = await c.post("/graphql", json=payload, headers=headers)
            cpu = _worker_cpu_s(prod_gateway.pid) - cpu0
            print(
                f"item1 {payload['query'][:12]!r}: worker CPU {cpu:.2f} s, "
                f"worst /healthz {watch.worst_s * 1000:.0f} ms"
            )
            assert r.status_code == 400, r.text[:300]
            assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "Did you mean" not in r.text
            assert watch.worst_s < 0.1, (watch.worst_s, cpu)


# -- item 4: caches keyed by query text ------------------------------------------

PADDED_QUERIES = 600
PADDED_BYTES = 900_000  # near the 1 MB body limit
RSS_GROWTH_BOUND = 150 << 20  # 2 x the default 32 MiB cache budget, plus heap slack


@pytest.fixture(scope="module")
def item4_gateway() -> Iterator[ServedGateway]:
    """A gateway of its own (default cache settings), so other tests' queries
    do not share its memory."""
    yield from _serve({})


async def test_item4_padded_queries_do_not_pin_memory(
    item4_gateway: ServedGateway, token: Callable[..., str], make_org
) -> None:
    """600 distinct queries padded near the body limit (half planned reads,
    half failing validation) leave the worker's resident memory within a
    bound: the document and plan caches are bounded by bytes."""
    org = await make_org()
    headers = {"authorization": f"Bearer {token(org, 'viewer')}"}
    ok_query = "{ fleet(first: 1) { totalCount } }"
    bad_query = "{ fleeet { totalCount } }"

    def padded(i: int) -> dict[str, Any]:
        head = ok_query if i % 2 == 0 else bad_query
        return {"query": f"{head}\n# {i}\n" + " " * (PADDED_BYTES - len(head) - 12)}

    async with httpx.AsyncClient(base_url=item4_gateway.url, timeout=60) as c:
        for i in (-2, -1):  # warm up both paths
            await c.post("/graphql", json=padded(i), headers=headers)
        base = rss_bytes(item4_gateway.pid)
        reset_peak_rss(item4_gateway.pid)
        started = time.monotonic()
        for i in range(PADDED_QUERIES):
            r = await c.post("/graphql", json=padded(i), headers=headers)
            assert r.status_code == (200 if i % 2 == 0 else 400), r.text[:300]
        elapsed = time.monotonic() - started
    growth = peak_rss_bytes(item4_gateway.pid) - base
    print(
        f"item4: {PADDED_QUERIES} padded queries in {elapsed:.1f} s, worker peak RSS"
        f" growth {growth / 2**20:.0f} MB (now {rss_bytes(item4_gateway.pid) / 2**20:.0f} MB)"
    )
    assert growth < RSS_GROWTH_BOUND, growth / 2**20


# -- item 9: dates at the edges of the calendar --------------------------------------

EDGE_DATES = (
    "0001-01-05T00:00:00+00:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00",
)
DATE_QUERIES = (
    "query($t: DateTime) { analytics { telemetryStats(metric: ALTITUDE_M, to: $t) { count } } }",
    "query($t: DateTime) { analytics { telemetrySeries(metric: ALTITUDE_M, bucketSeconds: 3600,"
    " to: $t) { bucket } } }",
    "query($t: DateTime!) { analytics { fleetStats(since: $t) { flights } } }",
    "query($t: DateTime) { flights(first: 1, filter: {departedTo: $t}) { totalCount } }",
    "query($t: DateTime, $f: ID!) { flight(id: $f) { telemetry(to: $t) { totalCount } } }",
    "mutation($t: DateTime!, $a: ID!) { startFlight(input: {aircraftId: $a, flightNumber:"
    ' "DX9", origin: "EDDF", destination: "KJFK", departedAt: $t}) { id } }',
    "mutation($t: DateTime!, $f: ID!) { completeFlight(id: $f, arrivedAt: $t) { id } }",
    "mutation($t: DateTime!, $a: ID!) { recordMaintenance(input: {aircraftId: $a,"
    ' component: "engine", kind: INSPECTION, performedAt: $t}) { id } }',
    "mutation($t: DateTime!, $f: ID!) { ingestTelemetry(flightId: $f, points:"
    " [{recordedAt: $t, altitudeM: 100}]) { accepted } }",
)


async def _item9_fleet(a: Api) -> dict[str, str]:
    made = await a.data(
        'mutation { createAircraft(input: {registration: "D-EDGE", manufacturer: "Cessna",'
        ' model: "172"}) { id } }'
    )
    aid = made["createAircraft"]["id"]
    flight = await a.data(
        'mutation($a: ID!) { startFlight(input: {aircraftId: $a, flightNumber: "DX1",'
        ' origin: "EDDF", destination: "KJFK", departedAt: "2026-06-01T10:00:00Z"}) { id } }',
        {"a": aid},
    )
    return {"a": aid, "f": flight["startFlight"]["id"]}


@pytest.mark.parametrize("path", ["planned", "resolver"])
async def test_item9_edge_dates_are_bad_user_input(
    path: str, client, resolver_client, token: Callable[..., str], make_org
) -> None:
    """DateTime arguments near year 1 or 9999 (analytics windows, fleetStats
    since, telemetry ranges, flight filters, mutations; as variables and
    literals) are BAD_USER_INPUT, never a masked INTERNAL_SERVER_ERROR."""
    org = await make_org()
    a = Api(client if path == "planned" else resolver_client, token(org, "admin"))
    ids = await _item9_fleet(a)
    failures = []
    for query in DATE_QUERIES:
        for value in EDGE_DATES:
            names = [n for n in ("a", "f") if f"${n}" in query]
            r = await a.post(query, {"t": value, **{n: ids[n] for n in names}})
            codes = [e["extensions"]["code"] for e in r.json().get("errors", [])]
            if codes != ["BAD_USER_INPUT"] or r.status_code != 400:
                failures.append((query[:60], value, r.status_code, codes))
    literal = '{ analytics { fleetStats(since: "0001-01-01T00:30:00+01:00") { flights } } }'
    r = await a.post(literal)
    codes = [e["extensions"]["code"] for e in r.json().get("errors", [])]
    if codes != ["BAD_USER_INPUT"]:
        failures.append((literal, "literal", r.status_code, codes))
    total = len(DATE_QUERIES) * len(EDGE_DATES) + 1
    print(f"item9 {path}: {len(failures)} of {total} answered other than BAD_USER_INPUT")
    assert not failures, failures


# -- item 10: one mutation field per operation ---------------------------------------

TWO_FIELDS = (
    "mutation($i: CreateAircraftInput!, $f: ID!) { createAircraft(input: $i) { id }"
    ' completeFlight(id: $f, arrivedAt: "2026-06-01T10:00:00Z") { id } }'
)
TWO_BY_FRAGMENT = (
    "mutation($i: CreateAircraftInput!, $j: CreateAircraftInput!) { __typename ...Both }"
    " fragment Both on Mutation { a: createAircraft(input: $i) { id }"
    " ... on Mutation { b: createAircraft(input: $j) { id } } }"
)


async def test_item10_multi_field_mutation_is_refused_and_writes_nothing(
    client, token: Callable[..., str], make_org, owner_conn
) -> None:
    """A mutation operation with two fields (directly, or through aliases and
    fragments) is refused with BAD_USER_INPUT before any resolver runs, so a
    failing second field cannot leave the first one written; one field plus
    ``__typename`` is still served."""
    org = await make_org()
    a = Api(client, token(org, "operator"))

    def aircraft(reg: str) -> dict[str, str]:
        return {"registration": reg, "manufacturer": "Cessna", "model": "172"}

    r = await a.post(TWO_FIELDS, {"i": aircraft("M-ONE"), "f": str(uuid.uuid4())})
    r2 = await a.post(TWO_BY_FRAGMENT, {"i": aircraft("M-TWO"), "j": aircraft("M-THREE")})
    written = await owner_conn.fetchval(
        "select count(*) from dbx_aviation.aircraft where org_id = $1", org
    )
    print(f"item10: statuses {r.status_code}, {r2.status_code}; aircraft written: {written}")
    for resp in (r, r2):
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        assert body.get("data") is None, body
    assert written == 0
    one = await a.data(
        "mutation($i: CreateAircraftInput!) { __typename createAircraft(input: $i) { id } }",
        {"i": aircraft("M-FOUR")},
    )
    assert one["__typename"] == "Mutation" and one["createAircraft"]["id"]


# == ingest: Hostile NDJSON ingest clients against a served gateway (uvicorn,
# one worker, real sockets): uploads that stall mid-body, bodies made of
# millions of bad lines, a line without end, and points in months the
# deployment keeps no partition for. Each test measures what it protects:
# primary backends idle in transaction, another tenant's mutation, partition
# DDL, ``/healthz`` latency, the worker's peak memory, and what was stored.

HOSTILE_INGEST_IDLE_S = 3  # the served gateway's DBX_INGEST_IDLE_TIMEOUT_S
HOSTILE_INGEST_START = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ingest_gateway() -> Iterator[ServedGateway]:
    """One worker with a short body-read idle timeout (dev mode: ``token``
    signs for it and ``/metrics`` is open)."""
    yield from _serve({"DBX_INGEST_IDLE_TIMEOUT_S": str(HOSTILE_INGEST_IDLE_S)})


@pytest.fixture
async def ingest_http(ingest_gateway: ServedGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ingest_gateway.url, timeout=120) as c:
        yield c


async def _post_ndjson(
    c: httpx.AsyncClient, flight_id: str, bearer: str, body: bytes
) -> httpx.Response:
    return await c.post(
        f"/v1/flights/{flight_id}/telemetry",
        content=body,
        headers={"authorization": f"Bearer {bearer}", "content-type": "application/x-ndjson"},
    )


async def _gql(c: httpx.AsyncClient, bearer: str, query: str, variables: Any = None) -> Any:
    r = await c.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {bearer}"},
    )
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    return r.json()["data"]


async def _ingest_flight(c: httpx.AsyncClient, bearer: str) -> str:
    reg = f"H{uuid.uuid4().hex[:6]}"
    a = await _gql(
        c,
        bearer,
        "mutation($i: CreateAircraftInput!) { createAircraft(input: $i) { id } }",
        {"i": {"registration": reg, "manufacturer": "x", "model": "y"}},
    )
    f = await _gql(
        c,
        bearer,
        'mutation($a: ID!) { startFlight(input: {aircraftId: $a, flightNumber: "HX1",'
        ' origin: "EDDF", destination: "EGLL", departedAt: "2026-06-01T09:00:00Z"}) { id } }',
        {"a": a["createAircraft"]["id"]},
    )
    return str(f["startFlight"]["id"])


def _ndjson_lines(n: int, start: dt.datetime) -> bytes:
    return b"".join(
        orjson.dumps(
            {"recordedAt": (start + dt.timedelta(seconds=i)).isoformat(), "altitudeM": 1000 + i}
        )
        + b"\n"
        for i in range(n)
    )


def _primary_admin_dsn(stack: dict[str, Any]) -> str:
    return str(next(n for n in stack["nodes"] if n["role"] == "primary")["admin_dsn"])


async def _idle_in_transaction(admin: asyncpg.Connection) -> int:
    """Gateway-role backends on the primary idle in a transaction for more
    than half a second (a transaction between two quick statements does not
    count)."""
    return int(
        await admin.fetchval(
            "select count(*) from pg_stat_activity where usename = 'dbx_gateway'"
            " and state like 'idle in transaction%'"
            " and now() - state_change > interval '0.5 s'"
        )
    )


async def _stalled_upload(
    url: str, bearer: str, flight_id: str, first_chunk: bytes, total: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An upload that announces ``total`` bytes, sends ``first_chunk`` and
    then nothing more."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /v1/flights/{flight_id}/telemetry HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {bearer}\r\nContent-Type: application/x-ndjson\r\n"
        f"Content-Length: {total}\r\n\r\n"
    )
    writer.write(head.encode() + first_chunk)
    await writer.drain()
    return reader, writer


async def _status_of(reader: asyncio.StreamReader, timeout_s: float) -> tuple[int, bytes]:
    """Status code and body of the answer to a stalled upload; 0 for none
    within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
    except TimeoutError:
        return 0, b"no answer"
    return int(status_line.split()[1]), body


async def test_item2_stalled_uploads_cost_the_database_nothing(
    ingest_gateway: ServedGateway,
    ingest_http: httpx.AsyncClient,
    make_org: OrgFactory,
    token: Callable[..., str],
    owner_dsn: str,
    stack: dict[str, Any],
) -> None:
    """Item 2: uploads that send one chunk (more than one staging chunk of
    points) and stall hold no primary transaction: no gateway backend idles
    in transaction, another tenant's mutation is served at once, partition
    DDL on ``flight_telemetry`` does not wait, ``/healthz`` stays fast, and
    the stalled uploads end with a body-read timeout and store nothing."""
    stalled_org, other_org = await make_org(), await make_org()
    bearer = token(stalled_org, "operator")
    other = token(other_org, "operator")
    fid = await _ingest_flight(ingest_http, bearer)
    uploads = []
    for k in range(10):  # more than the 8 primary connections of the worker
        first = _ndjson_lines(40_500, HOSTILE_INGEST_START + dt.timedelta(days=k))
        uploads.append(await _stalled_upload(ingest_gateway.url, bearer, fid, first, 50_000_000))
    admin = await asyncpg.connect(_primary_admin_dsn(stack))
    owner = await asyncpg.connect(owner_dsn)
    try:
        async with HealthWatch(ingest_gateway.url) as watch:
            # for a second and a half of stall, sampled: no backend idles
            worst_idle = 0
            watch_until = time.monotonic() + 1.5
            while time.monotonic() < watch_until:
                worst_idle = max(worst_idle, await _idle_in_transaction(admin))
                await asyncio.sleep(0.05)
            t0 = time.monotonic()
            r = await ingest_http.post(
                "/graphql",
                json={
                    "query": "mutation($i: CreateAircraftInput!) { createAircraft(input: $i)"
                    " { id } }",
                    "variables": {"i": {"registration": "HOK", "manufacturer": "x", "model": "y"}},
                },
                headers={"authorization": f"Bearer {other}"},
            )
            mutation_s = time.monotonic() - t0
            t0 = time.monotonic()
            ddl_error = None
            try:
                # a partition far ahead (nobody's data), made and dropped again
                await owner.execute("set lock_timeout = '3s'")
                await owner.execute(
                    "select dbx_aviation.ensure_telemetry_partitions('2090-01-01', 0)"
                )
            except asyncpg.PostgresError as exc:
                ddl_error = exc
            finally:
                await owner.execute("drop table if exists dbx_aviation.flight_telemetry_y2090m01")
            ddl_s = time.monotonic() - t0
            answers = await asyncio.gather(
                *(_status_of(reader, HOSTILE_INGEST_IDLE_S + 10) for reader, _ in uploads)
            )
        print(
            f"stalled uploads: worst idle-in-transaction backends {worst_idle},"
            f" other tenant's mutation {r.status_code} in {mutation_s:.2f} s,"
            f" partition DDL {ddl_s:.2f} s ({ddl_error!r}),"
            f" healthz worst {watch.worst_s * 1000:.0f} ms,"
            f" answers {sorted({s for s, _ in answers})}"
        )
        assert worst_idle == 0
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        assert mutation_s < 1.0
        assert ddl_error is None and ddl_s < 1.0
        assert watch.worst_s < 0.1
        for status, body in answers:
            assert status == 408, body
            assert orjson.loads(body)["errors"][0]["extensions"]["reason"] == "BODY_READ_TIMEOUT"
        assert await stored_points(owner_dsn, fid) == 0
    finally:
        for _, writer in uploads:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await admin.close()
        await owner.close()


async def test_item3_millions_of_bad_lines_keep_memory_and_answer_small(
    ingest_gateway: ServedGateway,
    ingest_http: httpx.AsyncClient,
    make_org: OrgFactory,
    token: Callable[..., str],
) -> None:
    """Item 3: 8 MiB of ``1\\n`` lines (4M rejections) grows the worker by
    less than 100 MB and answers with a bounded list plus the total count;
    ``/healthz`` stays within 100 ms meanwhile."""
    org = await make_org()
    bearer = token(org, "operator")
    fid = await _ingest_flight(ingest_http, bearer)
    body = b"1\n" * (4 << 20)
    base = rss_bytes(ingest_gateway.pid)
    reset_peak_rss(ingest_gateway.pid)
    t0 = time.monotonic()
    async with HealthWatch(ingest_gateway.url) as watch:
        r = await _post_ndjson(ingest_http, fid, bearer, body)
    took = time.monotonic() - t0
    growth = peak_rss_bytes(ingest_gateway.pid) - base
    print(
        f"8 MiB of bad lines: status {r.status_code}, answer {len(r.content)} bytes,"
        f" worker growth {growth / 2**20:.0f} MiB, {took:.1f} s,"
        f" healthz worst {watch.worst_s * 1000:.0f} ms"
    )
    assert r.status_code == 200, r.text[:500]
    out = r.json()
    assert growth < 100 * 2**20
    assert len(r.content) < 64 * 1024
    assert out["accepted"] == 0
    assert out["rejectedCount"] == 4 << 20
    assert 0 < len(out["rejected"]) <= 1000
    assert out["rejected"][0] == {"index": 0, "reason": "a point must be a JSON object"}
    assert watch.worst_s < 0.1


async def test_item3_endless_line_is_bounded(
    ingest_gateway: ServedGateway,
    ingest_http: httpx.AsyncClient,
    make_org: OrgFactory,
    token: Callable[..., str],
) -> None:
    """Item 3: a 48 MiB line without a newline (after one good point) is
    rejected as too long without being buffered: the worker grows by less
    than 24 MB, the answer comes within 10 s, ``/healthz`` within 100 ms,
    and the good point is stored."""
    org = await make_org()
    bearer = token(org, "operator")
    fid = await _ingest_flight(ingest_http, bearer)
    good = _ndjson_lines(1, HOSTILE_INGEST_START)

    async def body() -> AsyncIterator[bytes]:
        yield good
        block = b"7" * (64 * 1024)
        for _ in range(48 * 16):
            yield block

    base = rss_bytes(ingest_gateway.pid)
    reset_peak_rss(ingest_gateway.pid)
    t0 = time.monotonic()
    async with HealthWatch(ingest_gateway.url) as watch:
        r = await _post_ndjson(ingest_http, fid, bearer, body())
    took = time.monotonic() - t0
    growth = peak_rss_bytes(ingest_gateway.pid) - base
    print(
        f"48 MiB line: status {r.status_code}, worker growth {growth / 2**20:.0f} MiB,"
        f" {took:.1f} s, healthz worst {watch.worst_s * 1000:.0f} ms, answer {r.text[:300]}"
    )
    assert r.status_code == 200, r.text[:500]
    out = r.json()
    assert out["accepted"] == 1
    assert [x["index"] for x in out["rejected"]] == [1]
    assert "longer than" in out["rejected"][0]["reason"]
    assert growth < 24 * 2**20
    assert took < 10
    assert watch.worst_s < 0.1


async def test_item8_point_outside_kept_months_is_rejected_per_point(
    ingest_http: httpx.AsyncClient,
    make_org: OrgFactory,
    token: Callable[..., str],
    owner_dsn: str,
) -> None:
    """Item 8: a 1975 point among good ones (NDJSON and ``ingestTelemetry``)
    is a per-point rejection that names the reason; the good points are
    stored and the answer is 200, not 503."""
    org = await make_org()
    bearer = token(org, "operator")
    fid = await _ingest_flight(ingest_http, bearer)
    lines = _ndjson_lines(20, HOSTILE_INGEST_START).splitlines()
    lines[4] = orjson.dumps({"recordedAt": "1975-03-01T00:00:00Z", "altitudeM": 5})
    r = await _post_ndjson(ingest_http, fid, bearer, b"\n".join(lines) + b"\n")
    print(f"NDJSON with a 1975 point: {r.status_code} {r.text[:300]}")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 19
    assert [x["index"] for x in out["rejected"]] == [4]
    reason = out["rejected"][0]["reason"]
    assert "oldest telemetry" in reason or "retention" in reason

    points = [
        {"recordedAt": (HOSTILE_INGEST_START + dt.timedelta(hours=1, seconds=i)).isoformat()}
        for i in range(10)
    ]
    points[2]["recordedAt"] = "1975-03-01T00:00:00Z"
    r = await ingest_http.post(
        "/graphql",
        json={
            "query": "mutation($f: ID!, $p: [TelemetryPointInput!]!) { ingestTelemetry("
            "flightId: $f, points: $p) { accepted duplicates rejected { index reason } } }",
            "variables": {"f": fid, "p": points},
        },
        headers={"authorization": f"Bearer {bearer}"},
    )
    print(f"ingestTelemetry with a 1975 point: {r.status_code} {r.text[:300]}")
    assert r.status_code == 200, r.text
    got = r.json()["data"]["ingestTelemetry"]
    assert got["accepted"] == 9 and [x["index"] for x in got["rejected"]] == [2]
    assert await stored_points(owner_dsn, fid) == 28


async def test_item8_missing_partition_inside_kept_months_is_an_operator_fault(
    ingest_gateway: ServedGateway,
    ingest_http: httpx.AsyncClient,
    make_org: OrgFactory,
    token: Callable[..., str],
    owner_dsn: str,
) -> None:
    """Item 8 / catalog I4: a point inside the months the deployment keeps
    (after its oldest partition, within the organization's retention) whose
    month has no partition fails the batch with ``UNAVAILABLE`` and the
    missing-partition metric, and stores nothing. The gap is made by a
    partition for 1972-01 kept for the test's length, and a retention
    long enough to reach it."""
    org = await make_org()
    bearer = token(org, "operator")
    fid = await _ingest_flight(ingest_http, bearer)
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute("select dbx_aviation.ensure_telemetry_partitions('1972-01-01', 0)")
        await owner.execute(
            "update dbx_aviation.organizations set telemetry_retention_days = 36500 where id = $1",
            org,
        )

        async def metric() -> float:
            text = (await ingest_http.get("/metrics")).text
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("dbx_ingest_missing_partition_total")
            )

        before = await metric()
        # more than two staging chunks, the gap month's point last
        lines = _ndjson_lines(2 * INGEST_CHUNK + 10, HOSTILE_INGEST_START).splitlines()
        lines[-1] = orjson.dumps({"recordedAt": "1972-03-01T00:00:00Z", "altitudeM": 5})
        r = await _post_ndjson(ingest_http, fid, bearer, b"\n".join(lines) + b"\n")
        print(f"NDJSON with a point in a gap month: {r.status_code} {r.text[:300]}")
        assert r.status_code == 503, r.text
        err = r.json()["errors"][0]
        assert err["extensions"]["code"] == "UNAVAILABLE"
        assert "1972-03" in err["message"] and "partition" in err["message"]
        assert r.headers["retry-after"]
        await eventually(lambda: _more(metric, before), 5, "the missing-partition metric")
        r = await ingest_http.post(
            "/graphql",
            json={
                "query": "mutation($f: ID!, $p: [TelemetryPointInput!]!) { ingestTelemetry("
                "flightId: $f, points: $p) { accepted } }",
                "variables": {"f": fid, "p": [{"recordedAt": "1972-03-01T00:00:00Z"}]},
            },
            headers={"authorization": f"Bearer {bearer}"},
        )
        assert r.status_code == 503, r.text
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert await stored_points(owner_dsn, fid) == 0
    finally:
        await owner.execute(
            "update dbx_aviation.organizations set telemetry_retention_days = 730 where id = $1",
            org,
        )
        await owner.execute("drop table if exists dbx_aviation.flight_telemetry_y1972m01")
        await owner.close()


async def _more(metric: Callable[[], Any], before: float) -> bool:
    return bool(await metric() > before)


# == admission: Hostile clients against analytics admission and consistency
# tokens, on the real server (uvicorn, one replica behind PgBouncer).
# Admission (``DBX_ANALYTICS_CONCURRENCY``) must hold whatever the history of
# a statement: a cheap run must not let later heavy runs of the same document
# skip the slots, one org's history must not let another org's statement skip,
# and one request's aliased analytics fields must not hold every slot. A
# "heavy" run is made here by an ``ACCESS EXCLUSIVE`` lock on flights taken on
# the primary and replayed by the replica: every analytics statement that
# reads flights waits there, active in ``pg_stat_activity``, until the lock
# goes. Those waiting statements are the analytics transactions the gateway
# admitted at once.

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
        hog_peak = await eventually(
            lambda: admission.waiting(hog_statements), 10, "the 30-field request running"
        )
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


# == ops: Hostile clients against the operational endpoints of a production-
# mode gateway: an anonymous ``/readyz`` tells a probe ready or not and
# nothing about the nodes, ``/metrics`` needs the ops token
# (``DBX_OPS_TOKEN``), and with that token both answer in full.

# error class names a node's reason may carry (``ConnectionRefusedError: ...``)
OPS_ERROR_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b")


@pytest.fixture(scope="module")
def ops_gateway() -> Iterator[ServedGateway]:
    """A prod gateway whose third replica never answers (nothing listens on
    its port), so the node details carry an error as well as addresses."""
    dsns = local_stack_dsns()
    ghost = f"postgresql://dbx_gateway:x@127.0.0.1:{_free_port()}/dbx_ghost"
    replicas = [*dsns["replicas"], ghost]
    yield from _serve(
        {
            "DBX_ENV": "prod",
            "DBX_JWT_SECRET": PROD_JWT_SECRET,
            "DBX_OPS_TOKEN": PROD_OPS_TOKEN,
            "DBX_PRIMARY_DSN": os.environ.get("DBX_PRIMARY_DSN") or str(dsns["primary"]),
            "DBX_REPLICA_DSNS": ",".join(replicas),
        }
    )


def ops_internals(nodes: list[dict[str, Any]]) -> set[str]:
    """What an anonymous caller must not learn: each node's DSN and its host,
    port, user and database, its address, and the words naming them."""
    found = {"dsn", "address", "nodes", "dbx_gateway"}
    for n in nodes:
        found.update(str(n[k]) for k in ("dsn", "address", "name", "reason") if n.get(k))
        dsn = urlsplit(str(n["dsn"]))
        found.update(str(p) for p in (dsn.hostname, dsn.port, dsn.username) if p)
        found.add(dsn.path.lstrip("/"))
    return {s for s in found if s}


async def test_item6_anonymous_probes_show_no_internals(ops_gateway: ServedGateway) -> None:
    """An anonymous ``/readyz`` answers only ``{"ready": ...}`` (same status
    as before, for kubelets) and names no DSN, host, port, user, database or
    error class; an anonymous or wrongly authorized ``/metrics`` is refused
    (401); with ``Authorization: Bearer <DBX_OPS_TOKEN>`` both answer in
    full."""
    ops = {"authorization": f"Bearer {PROD_OPS_TOKEN}"}
    async with httpx.AsyncClient(base_url=ops_gateway.url, timeout=10) as c:

        async def reported() -> bool:
            nodes = (await c.get("/readyz", headers=ops)).json()["nodes"]
            return any(n["reason"] for n in nodes)

        await eventually(reported, 10, "the unreachable replica reported", period_s=0.1)
        anon = await c.get("/readyz")
        anon_metrics = await c.get("/metrics")
        wrong = await c.get("/readyz", headers={"authorization": "Bearer not-the-ops-token"})
        wrong_metrics = await c.get("/metrics", headers={"authorization": f"Bearer {'x' * 40}"})
        full = await c.get("/readyz", headers=ops)
        full_metrics = await c.get("/metrics", headers=ops)

    assert full.status_code == 200, full.text
    nodes = full.json()["nodes"]
    assert {n["role"] for n in nodes} >= {"primary", "replica"}
    assert all(n["dsn"] for n in nodes)
    reasons = [n["reason"] for n in nodes if n["reason"]]
    secrets = ops_internals(nodes)
    leaked = sorted(s for s in secrets if s in anon.text)
    errors_named = [m.group(0) for m in OPS_ERROR_NAME.finditer(anon.text)]
    print(
        f"anonymous /readyz {anon.status_code}: {len(anon.content)} bytes, leaked {leaked}, "
        f"error names {errors_named} (the nodes' reasons: {reasons}); "
        f"anonymous /metrics {anon_metrics.status_code} "
        f"({len(anon_metrics.content)} bytes); with token /readyz {len(full.content)} bytes, "
        f"/metrics {full_metrics.status_code} ({len(full_metrics.content)} bytes)"
    )
    assert anon.status_code == 200
    assert anon.json() == {"ready": True}, anon.text
    assert not leaked and not errors_named
    assert anon_metrics.status_code == 401, anon_metrics.text[:200]
    assert anon_metrics.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "dbx_" not in anon_metrics.text
    # a wrong token is told so, and learns nothing more
    assert wrong.status_code == 401 and not any(s in wrong.text for s in secrets)
    assert wrong_metrics.status_code == 401 and "dbx_" not in wrong_metrics.text
    assert full_metrics.status_code == 200
    assert full_metrics.headers["content-type"].startswith("text/plain")
    assert "dbx_node_up{" in full_metrics.text


# == retention: rows past an org's retention are archived before any is deleted

TELEMETRY_VALUES = (
    "org_id, aircraft_id, altitude_m, airspeed_ms, latitude, longitude, heading_deg, "
    "vertical_speed_ms, engine_temp_c, fuel_flow_kg_h"
)


async def test_item7_retention_never_deletes_a_point_it_did_not_archive(
    scratch_db: ScratchFactory,
) -> None:
    """A point re-sent after its first copy was archived: retention deletes
    from the live table only rows whose archived copy holds the same values,
    keeps the others live, and the ARCHIVE audit row counts moved, duplicate
    and kept rows as they really are."""
    dsn = await scratch_db()
    await migrate(dsn)
    now = dt.datetime.now(dt.UTC)
    same, changed = now - dt.timedelta(days=45), now - dt.timedelta(days=44)
    conn = await asyncpg.connect(dsn)
    try:
        # a 365-day org keeps the partitions attached (none is older than every retention)
        await org_with_telemetry(conn, 365, [now - dt.timedelta(days=1)])
        org = await org_with_telemetry(conn, 30, [same, changed, now - dt.timedelta(days=1)])
        first = await maintain_report(dsn, months_ahead=1)
        assert first.rows_archived == {str(org): 2}

        # the same two keys sent again: one with the archived values, one not
        fl, ac = await conn.fetchrow(
            "select flight_id, aircraft_id from dbx_aviation.flight_telemetry where org_id = $1",
            org,
        )
        await conn.executemany(
            "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, "
            "aircraft_id, altitude_m) values ($1, $2, $3, $4, $5)",
            [(fl, same, org, ac, 3000.0), (fl, changed, org, ac, 4321.0)],
        )
        resent = {
            r["recorded_at"]: tuple(r)[1:]
            for r in await conn.fetch(
                f"select recorded_at, {TELEMETRY_VALUES} from dbx_aviation.flight_telemetry "
                "where org_id = $1 and recorded_at < $2",
                org,
                now - dt.timedelta(days=30),
            )
        }
        assert len(resent) == 2
        archived_before = await conn.fetchval(
            "select count(*) from dbx_archive.flight_telemetry where org_id = $1", org
        )

        second = await maintain_report(dsn, months_ahead=1)
        print(second)

        live_after = {
            r["recorded_at"]
            for r in await conn.fetch(
                "select recorded_at from dbx_aviation.flight_telemetry "
                "where org_id = $1 and recorded_at < $2",
                org,
                now - dt.timedelta(days=30),
            )
        }
        archive = {
            r["recorded_at"]: tuple(r)[1:]
            for r in await conn.fetch(
                f"select recorded_at, {TELEMETRY_VALUES} from dbx_archive.flight_telemetry "
                "where org_id = $1",
                org,
            )
        }
        deleted = set(resent) - live_after
        lost = {t for t in deleted if archive.get(t) != resent[t]}
        audit = await conn.fetchval(
            "select old_values from dbx_audit.audit_log where operation = 'ARCHIVE' "
            "and org_id = $1 order by id desc limit 1",
            org,
        )
        print(
            f"deleted {len(deleted)}, lost {len(lost)}, archived "
            f"{archived_before} -> {len(archive)}, audit {audit}"
        )
        assert not lost, f"{len(lost)} deleted point(s) not in the archive with their values"
        assert deleted == {same} and live_after == {changed}
        assert len(archive) == archived_before == 2
        counts = json.loads(audit)
        assert (counts["moved"], counts["duplicate_of_archived"], counts["kept_conflicting"]) == (
            len(archive) - archived_before,
            len(deleted),
            len(live_after),
        )
        assert second.rows_archived == {}
        assert second.rows_duplicate == {str(org): 1}
        assert second.rows_kept == {str(org): 1}
    finally:
        await conn.close()
