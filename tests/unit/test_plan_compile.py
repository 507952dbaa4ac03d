"""Plan compilation without a database: which operations the planner takes,
the plan trees the schema's field plans give, the codecs columns are
written with, argument binding, and a statement text that depends on the
shape of the arguments only."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from graphql import GraphQLObjectType, parse

from gateway.api.plan.bind import bind
from gateway.api.plan.compile import MAX_KEYS, Decline, Plan, codec_of, compile_plan
from gateway.api.plan.emit import shape, statement
from gateway.api.plan.fields import ColumnPlan, plan_of
from gateway.api.plan.nodes import (
    Analytic,
    AnalyticsRoot,
    ById,
    Column,
    Connection,
    Cursor,
    Edges,
    PageInfo,
    Param,
    Related,
    RowObject,
    TotalCount,
    Typename,
)
from gateway.api.schema import build_schema
from gateway.api.types import Aircraft, AircraftStatus, Flight, FlightStatus
from gateway.data.planned_values import value_text

SCHEMA = build_schema()._schema
ORG = uuid.UUID(int=1)
ID = "00000000-0000-0000-0000-0000000000aa"


def compiled(query: str, name: str | None = None) -> Plan:
    return compile_plan(SCHEMA, parse(query), name)


def test_a_root_page_is_a_connection_of_rows_with_their_columns() -> None:
    plan = compiled(
        "{ fleet(first: 2) { totalCount edges { cursor node { id totalFlightHours status } } } }"
    )
    assert plan.intent == "read"
    [(key, conn)] = plan.root
    assert key == "fleet" and isinstance(conn, Connection)
    assert (conn.kind, conn.nested) == ("aircraft", False)
    assert [type(n) for _, n in conn.selection] == [TotalCount, Edges]
    edges = conn.selection[1][1]
    assert isinstance(edges, Edges)
    assert [type(n) for _, n in edges.selection] == [Cursor, RowObject]
    node = edges.selection[1][1]
    assert isinstance(node, RowObject)
    assert node.selection == [
        ("id", Column(value_text("id", "id"))),
        ("totalFlightHours", Column(value_text("numeric", "total_flight_hours"))),
        ("status", Column(value_text("enum", "status"))),
    ]
    [spec] = plan.args
    assert spec.paged and spec.counted


def test_nested_pages_related_rows_and_typenames() -> None:
    plan = compiled(
        "query Q($id: ID!) { a: aircraft(id: $id) { __typename latestFlight { flightNumber"
        " aircraft { registration } } flights(first: 3) { pageInfo { hasNextPage } } } }",
        "Q",
    )
    [(key, by_id)] = plan.root
    assert key == "a" and isinstance(by_id, ById) and by_id.kind == "aircraft"
    [typename, latest, flights] = by_id.selection
    assert typename == ("__typename", Typename("Aircraft"))
    assert isinstance(latest[1], Related)
    assert latest[1].selection[0] == ("flightNumber", Column(value_text("code", "flight_number")))
    assert isinstance(latest[1].selection[1][1], Related)
    conn = flights[1]
    assert isinstance(conn, Connection) and (conn.kind, conn.nested) == ("flight", True)
    assert isinstance(conn.selection[0][1], PageInfo)
    # the root id and the nested page bind arguments; only the page is paged
    assert [s.paged for s in plan.args] == [True, True]
    assert not plan.args[1].counted


def test_fields_are_merged_by_response_key_in_document_order() -> None:
    plan = compiled(
        f'query {{ flight(id: "{ID}") {{ ...F origin id }} }} fragment F on Flight {{ id version }}'
    )
    [(_, by_id)] = plan.root
    assert isinstance(by_id, ById)
    assert [k for k, _ in by_id.selection] == ["id", "version", "origin"]


def test_analytics_fields_are_planned_from_their_declarations() -> None:
    plan = compiled(
        "{ analytics { s: telemetryStats(metric: ALTITUDE_M) { metric count p50 windowEnd }"
        ' fleetStats(since: "2026-01-01T00:00:00Z") { registration } } }'
    )
    assert plan.intent == "analytics"
    [(_, root)] = plan.root
    assert isinstance(root, AnalyticsRoot)
    [(_, stats), (_, fleet)] = root.selection
    assert isinstance(stats, Analytic) and not stats.listed
    assert stats.selection == [
        ("metric", Param("metric")),
        ("count", Column(value_text("int", "n"))),
        ("p50", Column(value_text("float", "pct[1]"))),
        ("windowEnd", Param("window_end")),
    ]
    assert isinstance(fleet, Analytic) and fleet.listed
    assert fleet.selection == [("registration", Column(value_text("code", "registration")))]


@pytest.mark.parametrize(
    "query",
    [
        "{ viewer { subject } }",  # no plan declared
        "{ fleet { edges { node { maintenanceEvents { id } } } } }",
        '{ flight(id: "x") { telemetry { totalCount } } }',
        '{ analytics { dataQuality(flightId: "x") { score } } }',
        'mutation { retireAircraft(id: "x", expectedVersion: 1) { id } }',
        # analytics and plain reads run under different intents
        '{ fleet { totalCount } analytics { fleetStats(since: "2026-01-01T00:00:00Z")'
        " { registration } } }",
        "query($s: Boolean!) { fleet { totalCount @include(if: $s) } }",
        "{ fleet { edges { node { "
        + " ".join(f"k{i}: id" for i in range(MAX_KEYS + 1))
        + " } } } }",
    ],
)
def test_what_the_resolvers_answer_is_declined(query: str) -> None:
    with pytest.raises(Decline):
        compiled(query)


def test_every_declared_column_has_a_codec() -> None:
    """A column of a type the planner cannot write would decline every
    query that selects it: caught here instead."""
    columns = 0
    for gtype in SCHEMA.type_map.values():
        if not isinstance(gtype, GraphQLObjectType) or gtype.name.startswith("__"):
            continue
        for field in gtype.fields.values():
            p = plan_of(field)
            if isinstance(p, ColumnPlan):
                columns += 1
                assert codec_of(field, p), (gtype.name, field)
    assert columns >= 40


def _bound(query: str, variables: dict[str, object] | None = None) -> tuple[str, list[object]]:
    plan = compiled(query)
    bounds, values = bind(plan, SCHEMA, variables, ORG, 500)
    return statement(plan, bounds), values


def test_statement_text_depends_on_the_argument_shape_only() -> None:
    query = (
        "query($id: ID!, $n: Int) { aircraft(id: $id) { id flights(first: $n) { totalCount } } }"
    )
    other = str(uuid.UUID(int=2))
    sql_a, values_a = _bound(query, {"id": ID, "n": 2})
    sql_b, values_b = _bound(query, {"id": other, "n": 7})
    assert sql_a == sql_b and values_a != values_b
    assert values_a[:2] == [ORG, uuid.UUID(ID)]
    filtered = '{ fleet(filter: {manufacturer: "Airbus"}) { edges { node { id } } } }'
    plain = "{ fleet { edges { node { id } } } }"
    assert _bound(filtered)[0] != _bound(plain)[0]
    plan = compiled(plain)
    assert shape(bind(plan, SCHEMA, None, ORG, 500)[0]) == shape(
        bind(plan, SCHEMA, None, ORG, 500)[0]
    )


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ fleet(after: "not a cursor") { totalCount } }', None),
        ("query($id: ID!) { flight(id: $id) { id } }", {"id": "not-a-uuid"}),
        ('{ fleet(filter: {manufacturer: "' + "x" * 101 + '"}) { totalCount } }', None),
        ("query($id: ID!) { flight(id: $id) { id } }", {}),  # a variable missing
        ('{ analytics { fleetDailyStats(from: "2026-02-01", to: "2025-01-01") { day } } }', None),
    ],
)
def test_arguments_the_resolvers_refuse_are_declined(
    query: str, variables: dict[str, object] | None
) -> None:
    plan = compiled(query)
    with pytest.raises(Decline):
        bind(plan, SCHEMA, variables, ORG, 500)


def test_the_resolver_path_reads_the_declared_columns() -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    aircraft_id, flight_id = uuid.UUID(int=5), uuid.UUID(int=6)
    a = Aircraft.from_row(
        {
            "id": aircraft_id,
            "registration": "D-ABCD",
            "manufacturer": "Airbus",
            "model": "A320",
            "serial_number": None,
            "status": "maintenance",
            "specs": '{"seats": 180}',
            "total_flight_hours": Decimal("12.50"),
            "version": 3,
            "created_at": when,
            "updated_at": when,
            "retired_at": None,
        }
    )
    assert (a.id, a.status, a.specs, a.total_flight_hours) == (
        str(aircraft_id),
        AircraftStatus.MAINTENANCE,
        {"seats": 180},
        12.5,
    )
    assert isinstance(a.total_flight_hours, float) and a.row_id == aircraft_id
    f = Flight.from_row(
        {
            "id": flight_id,
            "aircraft_id": aircraft_id,
            "flight_number": "LH1",
            "origin": "EDDF",
            "destination": "EGLL",
            "departed_at": when,
            "arrived_at": None,
            "status": "in_flight",
            "version": 1,
        }
    )
    assert (f.id, f.status, f.arrived_at, f.aircraft_row_id) == (
        str(flight_id),
        FlightStatus.IN_FLIGHT,
        None,
        aircraft_id,
    )
