"""Hostile NDJSON ingest clients against a served gateway
(uvicorn, one worker, real sockets): uploads that stall mid-body, bodies
made of millions of bad lines, a line without end, and points in months the
deployment keeps no partition for.

Each test measures what it protects: primary backends idle in transaction,
another tenant's mutation, partition DDL, ``/healthz`` latency, the worker's
peak memory, and what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from gateway.api.ingest import INGEST_CHUNK
from tests.conftest import OrgFactory
from tests.e2e.conftest import (
    HealthWatch,
    ServedGateway,
    _serve,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
)

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


async def _stored_points(owner_dsn: str, flight_id: str) -> int:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return int(
            await conn.fetchval(
                "select count(*) from dbx_aviation.flight_telemetry where flight_id = $1::uuid",
                flight_id,
            )
        )
    finally:
        await conn.close()


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


async def _until_true(check: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


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
        assert await _stored_points(owner_dsn, fid) == 0
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
        r = await ingest_http.post(
            f"/v1/flights/{fid}/telemetry",
            content=body,
            headers={"authorization": f"Bearer {bearer}", "content-type": "application/x-ndjson"},
        )
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
        r = await ingest_http.post(
            f"/v1/flights/{fid}/telemetry",
            content=body(),
            headers={"authorization": f"Bearer {bearer}", "content-type": "application/x-ndjson"},
        )
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
    r = await ingest_http.post(
        f"/v1/flights/{fid}/telemetry",
        content=b"\n".join(lines) + b"\n",
        headers={"authorization": f"Bearer {bearer}", "content-type": "application/x-ndjson"},
    )
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
    assert await _stored_points(owner_dsn, fid) == 28


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
        r = await ingest_http.post(
            f"/v1/flights/{fid}/telemetry",
            content=b"\n".join(lines) + b"\n",
            headers={"authorization": f"Bearer {bearer}", "content-type": "application/x-ndjson"},
        )
        print(f"NDJSON with a point in a gap month: {r.status_code} {r.text[:300]}")
        assert r.status_code == 503, r.text
        err = r.json()["errors"][0]
        assert err["extensions"]["code"] == "UNAVAILABLE"
        assert "1972-03" in err["message"] and "partition" in err["message"]
        assert r.headers["retry-after"]
        await _until_true(lambda: _more(metric, before), 5, "the missing-partition metric")
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
        assert await _stored_points(owner_dsn, fid) == 0
    finally:
        await owner.execute(
            "update dbx_aviation.organizations set telemetry_retention_days = 730 where id = $1",
            org,
        )
        await owner.execute("drop table if exists dbx_aviation.flight_telemetry_y1972m01")
        await owner.close()


async def _more(metric: Callable[[], Any], before: float) -> bool:
    return bool(await metric() > before)
