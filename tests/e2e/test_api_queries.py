"""Reads over HTTP: nested queries cost a fixed number of SQL statements
whatever the page size; pagination, filters, viewer."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import Api, statements_of
from tests.e2e.fleet_data import seed_fleet
from tests.support.wait import wait_replicated

NESTED = (
    "query($n: Int!) { fleet(first: $n) { edges { node { id"
    " flights(first: 5) { edges { node { id aircraft { id } } } } } } } }"
)


@pytest.mark.parametrize("path", ["resolvers", "planned"])
@pytest.mark.parametrize("size", [5, 50, 500])
async def test_nested_fleet_query_runs_a_fixed_number_of_statements(
    size, path, make_org, owner_dsn, stack, token, client, resolver_client
):
    org = await make_org()
    await seed_fleet(owner_dsn, org, size, flights_each=2)
    await wait_replicated(stack)
    http = resolver_client if path == "resolvers" else client
    a = Api(http, token(org, "viewer"))
    await a.data("{ viewer { orgId } }")  # the org check is cached after this
    rid = f"count-{uuid.uuid4().hex}"
    r = await a.post(NESTED, {"n": size}, x_request_id=rid)
    body = r.json()
    assert r.status_code == 200, body
    edges = body["data"]["fleet"]["edges"]
    assert len(edges) == size
    for e in edges:
        flights = e["node"]["flights"]["edges"]
        assert len(flights) == 2
        assert all(f["node"]["aircraft"]["id"] == e["node"]["id"] for f in flights)
    statements = await statements_of(http, rid)
    if path == "resolvers":
        # one fleet page + one batched LATERAL for every aircraft's flights;
        # the aircraft of each flight come from the primed loader
        assert len(statements) == 2, statements
    else:
        # the whole selection planned into one statement
        assert len(statements) == 1, statements
    assert r.headers["x-request-id"] == rid


async def test_fleet_pagination_walks_every_aircraft_once(make_org, owner_dsn, stack, api):
    org = await make_org()
    ids = await seed_fleet(owner_dsn, org, 23)
    await wait_replicated(stack)
    a = api(org, "viewer")
    seen: list[str] = []
    after = None
    while True:
        data = await a.data(
            "query($a: String) { fleet(first: 5, after: $a) { totalCount"
            " pageInfo { hasNextPage endCursor } edges { node { id registration } } } }",
            {"a": after},
        )
        page = data["fleet"]
        assert page["totalCount"] == 23
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(str(i) for i in ids)
    assert len(seen) == len(set(seen))


async def test_filters_and_viewer(make_org, owner_dsn, stack, api):
    org = await make_org()
    ids = await seed_fleet(owner_dsn, org, 4, flights_each=3, prefix="F")
    await wait_replicated(stack)
    a = api(org, "analyst")
    data = await a.data('{ fleet(filter: {registrationPrefix: "F0000"}) { totalCount } }')
    assert data["fleet"]["totalCount"] == 4
    data = await a.data(
        'query($id: ID!) { flights(filter: {aircraftId: $id, origin: "EDDF"}) { totalCount'
        " edges { node { aircraft { id } } } } }",
        {"id": str(ids[0])},
    )
    assert data["flights"]["totalCount"] == 3
    assert {e["node"]["aircraft"]["id"] for e in data["flights"]["edges"]} == {str(ids[0])}
    data = await a.data(
        '{ flights(filter: {departedFrom: "2026-01-02T00:00:00Z"}) { totalCount } }'
    )
    assert data["flights"]["totalCount"] == 4 * 2
    data = await a.data("{ viewer { orgId roles organization { id kind } } }")
    assert data["viewer"] == {
        "orgId": str(org),
        "roles": ["analyst"],
        "organization": {"id": str(org), "kind": "airline"},
    }


@pytest.mark.parametrize("path", ["resolvers", "planned"])
async def test_a_failing_field_does_not_cancel_a_shared_load_of_another_alias(
    path, make_org, owner_dsn, stack, token, client, resolver_client
):
    """Aliases ``a`` and ``b`` ask the loader for the same key; ``a`` fails
    (bad cursor), so graphql-core cancels ``a``'s other fields. ``b`` still
    gets its value: cancelling one waiter never cancels the shared future."""
    org = await make_org()
    (aircraft,) = await seed_fleet(owner_dsn, org, 1, flights_each=2, prefix="CX")
    await wait_replicated(stack)
    a = Api(resolver_client if path == "resolvers" else client, token(org, "viewer"))
    query = (
        "query($id: ID!) { a: aircraft(id: $id) { latestFlight { id }"
        ' flights(after: "junk") { totalCount } }'
        " b: aircraft(id: $id) { latestFlight { id flightNumber } } }"
    )
    for _ in range(3):
        r = await a.post(query, {"id": str(aircraft)})
        body = r.json()
        assert r.status_code == 200, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert body["data"]["a"] is None
        assert body["data"]["b"]["latestFlight"]["flightNumber"]
