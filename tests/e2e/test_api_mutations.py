"""Mutations over HTTP: optimistic locking under concurrency, soft retire,
the flight lifecycle, maintenance, read-your-writes with the token."""

from __future__ import annotations

import asyncio

CREATE = "mutation($i: CreateAircraftInput!) { createAircraft(input: $i) { id version status } }"
UPDATE = (
    "mutation($id: ID!, $v: Int!, $m: String) { updateAircraft(id: $id, expectedVersion: $v,"
    " input: {model: $m}) { id version model } }"
)
START = (
    'mutation($a: ID!, $t: DateTime!) { startFlight(input: {aircraftId: $a, flightNumber: "DX1",'
    ' origin: "EDDF", destination: "KJFK", departedAt: $t}) { id status } }'
)
COMPLETE = "mutation($f: ID!, $t: DateTime!) { completeFlight(id: $f, arrivedAt: $t) { status } }"


async def _aircraft(a, reg: str = "N1") -> str:
    data = await a.data(
        CREATE, {"i": {"registration": reg, "manufacturer": "Cessna", "model": "172"}}
    )
    assert data["createAircraft"]["version"] == 1
    return str(data["createAircraft"]["id"])


async def test_concurrent_updates_one_wins(make_org, api):
    org = await make_org()
    a = api(org, "operator")
    aid = await _aircraft(a)
    for round_ in range(5):
        version = round_ + 1
        rs = await asyncio.gather(
            *(a.post(UPDATE, {"id": aid, "v": version, "m": f"m{round_}-{i}"}) for i in range(2))
        )
        bodies = [r.json() for r in rs]
        winners = [b for b in bodies if "errors" not in b]
        losers = [b for b in bodies if "errors" in b]
        assert len(winners) == 1 and len(losers) == 1, bodies
        assert winners[0]["data"]["updateAircraft"]["version"] == version + 1
        assert losers[0]["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_retire_is_soft_and_final(make_org, api):
    org = await make_org()
    a = api(org, "admin")
    aid = await _aircraft(a, "R1")
    r = await a.data(
        "mutation($id: ID!) { retireAircraft(id: $id, expectedVersion: 1) { status retiredAt version } }",  # noqa: E501 - GraphQL literal
        {"id": aid},
    )
    assert r["retireAircraft"]["status"] == "RETIRED" and r["retireAircraft"]["retiredAt"]
    again = await a.post(
        "mutation($id: ID!) { retireAircraft(id: $id, expectedVersion: 2) { id } }", {"id": aid}
    )
    assert again.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    start = await a.post(START, {"a": aid, "t": "2026-06-01T10:00:00Z"})
    assert start.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # still readable: history is kept (read your write with the token)
    d = await a.data("query($id: ID!) { aircraft(id: $id) { status } }", {"id": aid})
    assert d["aircraft"]["status"] == "RETIRED"


async def test_flight_lifecycle(make_org, api):
    org = await make_org()
    a = api(org, "operator")
    aid = await _aircraft(a, "L1")
    bad = await a.post(START.replace('"KJFK"', '"JFK"'), {"a": aid, "t": "2026-06-01T10:00:00Z"})
    assert (
        bad.status_code == 400 and bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    )
    fid = (await a.data(START, {"a": aid, "t": "2026-06-01T10:00:00Z"}))["startFlight"]["id"]
    early = await a.post(COMPLETE, {"f": fid, "t": "2026-06-01T09:00:00Z"})
    assert early.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    done = await a.data(COMPLETE, {"f": fid, "t": "2026-06-01T13:30:00Z"})
    assert done["completeFlight"]["status"] == "COMPLETED"
    twice = await a.post(COMPLETE, {"f": fid, "t": "2026-06-01T14:00:00Z"})
    assert twice.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    d = await a.data(
        "query($id: ID!) { aircraft(id: $id) { totalFlightHours latestFlight { id status } } }",
        {"id": aid},
    )
    assert d["aircraft"]["totalFlightHours"] == 3.5
    assert d["aircraft"]["latestFlight"] == {"id": fid, "status": "COMPLETED"}
    m = await a.data(
        'mutation($a: ID!) { recordMaintenance(input: {aircraftId: $a, component: "engine",'
        ' kind: INSPECTION, performedAt: "2026-06-02T00:00:00Z"}) { aircraftHours kind } }',
        {"a": aid},
    )
    assert m["recordMaintenance"] == {"aircraftHours": 3.5, "kind": "INSPECTION"}


async def test_mutation_returns_consistency_token(make_org, api):
    org = await make_org()
    a = api(org, "operator")
    r = await a.post(CREATE, {"i": {"registration": "K1", "manufacturer": "x", "model": "y"}})
    token = r.headers["x-dbx-consistency"]
    assert r.json()["extensions"]["consistency"] == token
    q = await a.post("{ fleet { totalCount } }", x_dbx_consistency=token)
    assert q.json()["data"]["fleet"]["totalCount"] == 1
