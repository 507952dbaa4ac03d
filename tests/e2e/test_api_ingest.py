"""Telemetry ingest over GraphQL and NDJSON: duplicates stored once, bad
points listed and good ones stored, all-or-none on a database failure."""

from __future__ import annotations

import datetime as dt
import json
import math

from tests.support.orgs import stored_points

INGEST = (
    "mutation($f: ID!, $p: [TelemetryPointInput!]!) { ingestTelemetry(flightId: $f, points: $p)"
    " { accepted duplicates rejected { index reason } } }"
)


async def _flight(a, reg: str, departed: str = "2026-06-01T10:00:00Z") -> str:
    d = await a.data(
        "mutation($i: CreateAircraftInput!) { createAircraft(input: $i) { id } }",
        {"i": {"registration": reg, "manufacturer": "x", "model": "y"}},
    )
    f = await a.data(
        "mutation($a: ID!, $t: DateTime!) { startFlight(input: {aircraftId: $a,"
        ' flightNumber: "IN1", origin: "EDDF", destination: "EGLL", departedAt: $t}) { id } }',
        {"a": d["createAircraft"]["id"], "t": departed},
    )
    return str(f["startFlight"]["id"])


def _points(n: int, start: dt.datetime) -> list[dict]:
    return [
        {"recordedAt": (start + dt.timedelta(seconds=i)).isoformat(), "altitudeM": 1000 + i}
        for i in range(n)
    ]


START = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


async def test_same_batch_twice_is_stored_once(make_org, api, owner_dsn):
    org = await make_org()
    a = api(org, "operator")
    fid = await _flight(a, "I1")
    pts = _points(500, START)
    first = (await a.data(INGEST, {"f": fid, "p": pts}))["ingestTelemetry"]
    assert first == {"accepted": 500, "duplicates": 0, "rejected": []}
    second = (await a.data(INGEST, {"f": fid, "p": pts + pts[:10]}))["ingestTelemetry"]
    assert second == {"accepted": 0, "duplicates": 510, "rejected": []}
    assert await stored_points(owner_dsn, fid) == 500


async def test_mixed_batch_stores_exactly_the_good_points(make_org, api, owner_dsn):
    org = await make_org()
    a = api(org, "operator")
    fid = await _flight(a, "I2")
    pts = _points(100, START)
    pts[3]["altitudeM"] = 99999
    pts[7]["recordedAt"] = "1969-12-31T23:59:59Z"
    pts[9]["recordedAt"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)).isoformat()
    pts[11]["recordedAt"] = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    pts[12]["headingDeg"] = 400
    out = (await a.data(INGEST, {"f": fid, "p": pts}))["ingestTelemetry"]
    assert [r["index"] for r in out["rejected"]] == [3, 7, 9, 12]
    assert "altitudeM" in out["rejected"][0]["reason"]
    assert "1970" in out["rejected"][1]["reason"]
    assert "future" in out["rejected"][2]["reason"]
    assert out["accepted"] == 96 and out["duplicates"] == 0
    assert await stored_points(owner_dsn, fid) == 96


async def test_point_before_the_kept_months_is_rejected_per_point(make_org, api, owner_dsn):
    """A 1990 point (older than the oldest partition and the retention) is
    the client's problem, not an operator's: the rest of the batch lands.
    A missing partition inside the kept months: test_hostile_ingest."""
    org = await make_org()
    a = api(org, "operator")
    fid = await _flight(a, "I3")
    pts = _points(50, START) + [{"recordedAt": "1990-05-01T00:00:00Z", "altitudeM": 1}]
    out = (await a.data(INGEST, {"f": fid, "p": pts}))["ingestTelemetry"]
    assert out["accepted"] == 50 and [r["index"] for r in out["rejected"]] == [50]
    assert await stored_points(owner_dsn, fid) == 50


async def test_ndjson_route(make_org, api, client, owner_dsn):
    org = await make_org()
    a = api(org, "operator")
    fid = await _flight(a, "I4")
    lines = [json.dumps(p) for p in _points(1000, START)]
    lines[5] = "{not json"
    lines[6] = json.dumps({"recordedAt": START.isoformat(), "altitudeM": math.inf}).replace(
        "Infinity", "1e999"
    )
    lines[7] = json.dumps({"recordedAt": START.isoformat(), "bogus": 1})
    body = "\n".join(lines) + "\n"
    headers = {**a.headers, "content-type": "application/x-ndjson"}
    r = await client.post(f"/v1/flights/{fid}/telemetry", content=body, headers=headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["index"] for x in out["rejected"]] == [5, 6, 7]
    assert out["accepted"] == 997 and out["duplicates"] == 0
    again = (
        await client.post(f"/v1/flights/{fid}/telemetry", content=body, headers=headers)
    ).json()
    assert again["accepted"] == 0 and again["duplicates"] == 997
    assert await stored_points(owner_dsn, fid) == 997
    viewer = api(org, "viewer")
    r = await client.post(
        f"/v1/flights/{fid}/telemetry",
        content=body,
        headers={**viewer.headers, "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 403


async def test_telemetry_reads(make_org, api):
    org = await make_org()
    a = api(org, "operator")
    fid = await _flight(a, "I5")
    await a.data(INGEST, {"f": fid, "p": _points(30, START)})
    d = await a.data(
        "query($f: ID!) { flight(id: $f) { telemetrySummary { pointCount maxAltitudeM }"
        ' telemetry(first: 10, from: "2026-06-01T10:00:05Z") { totalCount'
        " pageInfo { hasNextPage endCursor } edges { node { altitudeM } } } } }",
        {"f": fid},
    )
    flight = d["flight"]
    assert flight["telemetrySummary"] == {"pointCount": 30, "maxAltitudeM": 1029.0}
    assert flight["telemetry"]["totalCount"] == 25
    assert [e["node"]["altitudeM"] for e in flight["telemetry"]["edges"]][0] == 1005.0
    after = flight["telemetry"]["pageInfo"]["endCursor"]
    d2 = await a.data(
        "query($f: ID!, $a: String) { flight(id: $f) { telemetry(first: 100, after: $a)"
        " { edges { node { altitudeM } } } } }",
        {"f": fid, "a": after},
    )
    assert len(d2["flight"]["telemetry"]["edges"]) == 15


async def test_ndjson_stream_across_chunks_counts_repeats(make_org, api, client, owner_dsn):
    """A stream longer than one staging chunk (gateway.api.ingest.INGEST_CHUNK):
    repeats that fall in different chunks are duplicates. (A missing
    partition in a late chunk undoing the earlier ones: test_hostile_ingest.)"""
    from gateway.api.ingest import INGEST_CHUNK

    org = await make_org()
    a = api(org, "operator")
    headers = {**a.headers, "content-type": "application/x-ndjson"}
    fid = await _flight(a, "I5")
    n = 2 * INGEST_CHUNK + 500
    points = [
        {"recordedAt": (START + dt.timedelta(seconds=i)).isoformat(), "altitudeM": 1000 + i % 999}
        for i in range(n)
    ]
    repeats = points[:300]  # the third chunk repeats the first chunk's start
    body = "\n".join(json.dumps(p) for p in points + repeats) + "\n"
    out = (await client.post(f"/v1/flights/{fid}/telemetry", content=body, headers=headers)).json()
    assert (out["accepted"], out["duplicates"], out["rejected"]) == (n, 300, [])
    assert await stored_points(owner_dsn, fid) == n
