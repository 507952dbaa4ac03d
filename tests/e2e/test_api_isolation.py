"""Two orgs, two tokens: nothing org A sends (ids, cursors, filters,
mutations) ever returns, changes or reveals org B's data."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api import cursors
from tests.e2e.fleet_data import seed_fleet
from tests.support.wait import wait_replicated


@pytest.fixture
async def two_orgs(make_org, owner_dsn, stack):
    a, b = await make_org(), await make_org()
    a_ids = await seed_fleet(owner_dsn, a, 6, flights_each=2, prefix="A")
    b_ids = await seed_fleet(owner_dsn, b, 6, flights_each=2, prefix="B")
    await wait_replicated(stack)
    return a, b, a_ids, b_ids


async def test_ids_cursors_filters_of_b_reveal_nothing_to_a(two_orgs, api):
    a, b, a_ids, b_ids = two_orgs
    ca, cb = api(a, "admin"), api(b, "admin")
    b_page = await cb.data(
        "{ fleet(first: 2) { pageInfo { endCursor } } flights(first: 2) { pageInfo { endCursor } edges { node { id } } } }"  # noqa: E501 - GraphQL literal
    )
    b_flight = b_page["flights"]["edges"][0]["node"]["id"]
    for bid in b_ids:
        d = await ca.data("query($id: ID!) { aircraft(id: $id) { id } }", {"id": str(bid)})
        assert d["aircraft"] is None
    assert (await ca.data("query($id: ID!) { flight(id: $id) { id } }", {"id": b_flight}))[
        "flight"
    ] is None
    d = await ca.data(
        "query($c: String) { fleet(first: 50, after: $c) { edges { node { id } } } }",
        {"c": b_page["fleet"]["pageInfo"]["endCursor"]},
    )
    assert {e["node"]["id"] for e in d["fleet"]["edges"]} <= {str(i) for i in a_ids}
    d = await ca.data(
        "query($c: String) { flights(first: 50, after: $c) { edges { node { id aircraft { id } } } } }",  # noqa: E501 - GraphQL literal
        {"c": b_page["flights"]["pageInfo"]["endCursor"]},
    )
    assert {e["node"]["aircraft"]["id"] for e in d["flights"]["edges"]} <= {str(i) for i in a_ids}
    d = await ca.data(
        "query($id: ID!) { flights(filter: {aircraftId: $id}) { totalCount } }",
        {"id": str(b_ids[0])},
    )
    assert d["flights"]["totalCount"] == 0
    d = await ca.data('{ fleet(filter: {registrationPrefix: "B"}) { totalCount } }')
    assert d["fleet"]["totalCount"] == 0
    # writes aimed at B's rows: NOT_FOUND, nothing changed
    r = await ca.post(
        'mutation($id: ID!) { updateAircraft(id: $id, expectedVersion: 1, input: {model: "X"}) { id } }',  # noqa: E501 - GraphQL literal
        {"id": str(b_ids[0])},
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    r = await ca.post(
        'mutation($id: ID!) { startFlight(input: {aircraftId: $id, flightNumber: "X1",'
        ' origin: "EDDF", destination: "EGLL", departedAt: "2026-06-01T00:00:00Z"}) { id } }',
        {"id": str(b_ids[0])},
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    r = await ca.post(
        'mutation($f: ID!) { ingestTelemetry(flightId: $f, points: [{recordedAt: "2026-06-01T00:00:00Z"}]) { accepted } }',  # noqa: E501 - GraphQL literal
        {"f": b_flight},
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    d = await cb.data(
        "query($id: ID!) { aircraft(id: $id) { model version } }", {"id": str(b_ids[0])}
    )
    assert d["aircraft"] == {"model": "A320", "version": 1}
    # same registration in both orgs is fine (unique per org, no existence oracle)
    await ca.data(
        'mutation { createAircraft(input: {registration: "B00000", manufacturer: "x", model: "y"}) { id } }'  # noqa: E501 - GraphQL literal
    )


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    guess=st.one_of(st.uuids().map(str), st.text(max_size=40)),
    reg=st.text(alphabet="AB0123456789-", min_size=1, max_size=6),
    key_id=st.uuids(),
)
async def test_generated_ids_and_cursors_never_cross_orgs(two_orgs, api, guess, reg, key_id):
    a, b, a_ids, b_ids = two_orgs
    ca = api(a, "viewer")
    mine = {str(i) for i in a_ids}
    r = await ca.post("query($id: ID!) { aircraft(id: $id) { id } }", {"id": guess})
    body = r.json()
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    else:
        assert body["data"]["aircraft"] is None or body["data"]["aircraft"]["id"] in mine
    cursor = cursors.aircraft_cursor(reg, key_id)
    r = await ca.post(
        "query($c: String, $p: String) { fleet(first: 50, after: $c, filter: {registrationPrefix: $p})"  # noqa: E501 - GraphQL literal
        " { edges { node { id } } } }",
        {"c": cursor, "p": reg},
    )
    body = r.json()
    assert "errors" not in body, body
    assert {e["node"]["id"] for e in body["data"]["fleet"]["edges"]} <= mine
