"""SQL pieces for planned reads (``gateway.api.plan``): how each planned
GraphQL scalar is written as a JSON value by PostgreSQL, exactly as the
resolver path would serialise it (DateTime as Python's ``isoformat()`` in
UTC, enums upper-case, numeric as float8, Relay cursors as base64url of
compact JSON), the keyset page source of a connection, and the one data
function that runs a planned statement and hands back its JSON text.

Page sources reuse the filters, seek predicates and orderings of
``gateway.data.aircraft`` and ``gateway.data.flights``, so both paths page
alike. Every source filters ``org_id`` explicitly besides row-level security.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from gateway.data import aircraft as aircraft_data
from gateway.data import flights as flight_data
from gateway.data.fragments import Params, seek_after, where
from gateway.db.connection import TenantConnection

Kind = Literal["aircraft", "flight"]
TABLES: dict[Kind, str] = {"aircraft": "dbx_aviation.aircraft", "flight": "dbx_aviation.flights"}
# Alias the data layer's filters and orderings are written against.
INNER: dict[Kind, str] = {"aircraft": "a", "flight": "f"}
ORDER: dict[Kind, str] = {
    "aircraft": "order by a.registration, a.id",
    "flight": flight_data.ORDER_BY,
}


def timestamp(expr: str) -> str:
    """``datetime.isoformat()`` of a timestamptz in UTC: microseconds only
    when non-zero; NULL stays NULL."""
    # one to_char whose format is chosen per value: cheaper than gluing parts
    return (
        f"to_char(({expr} at time zone 'UTC'), case when date_trunc('second', {expr}) = {expr}"
        " then 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'"
        " else 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"' end)"
    )


def _base64url(text_expr: str) -> str:
    # PostgreSQL's base64 wraps lines and uses +/; cursors are unpadded base64url.
    return (
        f"rtrim(translate(encode(convert_to({text_expr}, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"
    )


def cursor(kind: Kind, t: str) -> str:
    """``gateway.api.cursors.aircraft_cursor`` / ``flight_cursor`` in SQL.
    Registrations are ``[A-Z0-9-]`` only (a check constraint), so ``to_json``
    escapes them as Python's ``json.dumps`` does."""
    if kind == "aircraft":
        key = f"to_json({t}.registration)::text || ',\"' || {t}.id::text || '\"'"
    else:
        key = f"'\"' || {timestamp(f'{t}.departed_at')} || '\",\"' || {t}.id::text || '\"'"
    return _base64url(f'\'{{"v":1,"t":"{kind}","k":[\' || {key} || \']}}\'')


# GraphQL field name -> JSON value expression over a row alias ``{t}``.
AIRCRAFT_FIELDS: dict[str, str] = {
    "id": "{t}.id::text",
    "registration": "{t}.registration",
    "manufacturer": "{t}.manufacturer",
    "model": "{t}.model",
    "serialNumber": "{t}.serial_number",
    "status": "upper({t}.status)",
    "specs": "{t}.specs",
    "totalFlightHours": "{t}.total_flight_hours::float8",
    "version": "{t}.version",
    "createdAt": timestamp("{t}.created_at"),
    "updatedAt": timestamp("{t}.updated_at"),
    "retiredAt": timestamp("{t}.retired_at"),
}
FLIGHT_FIELDS: dict[str, str] = {
    "id": "{t}.id::text",
    "flightNumber": "{t}.flight_number",
    "origin": "{t}.origin",
    "destination": "{t}.destination",
    "departedAt": timestamp("{t}.departed_at"),
    "arrivedAt": timestamp("{t}.arrived_at"),
    "status": "upper({t}.status)",
    "version": "{t}.version",
}
FIELDS: dict[Kind, dict[str, str]] = {"aircraft": AIRCRAFT_FIELDS, "flight": FLIGHT_FIELDS}


def column(kind: Kind, field: str, t: str) -> str:
    return FIELDS[kind][field].replace("{t}", t)


def by_id(kind: Kind, t: str, id_param: str) -> str:
    """FROM/WHERE of one row by id (``t`` is its alias)."""
    return f"from {TABLES[kind]} {t} where {t}.org_id = $1 and {t}.id = {id_param}"


def aircraft_of_flight(t: str, flight: str) -> str:
    return f"from dbx_aviation.aircraft {t} where {t}.org_id = $1 and {t}.id = {flight}.aircraft_id"


def latest_flight_of(t: str, aircraft: str) -> str:
    return (
        f"from dbx_aviation.flights {t} where {t}.org_id = $1 and {t}.aircraft_id = {aircraft}.id"
        f" order by {t}.departed_at desc, {t}.id desc limit 1"
    )


def filter_conditions(
    p: Params, kind: Kind, flt: aircraft_data.AircraftFilter | flight_data.FlightFilter | None
) -> list[str]:
    """The org and filter conditions of a root connection (values bound into ``p``)."""
    if kind == "aircraft":
        return aircraft_data.filter_conditions(p, "$1", flt)  # type: ignore[arg-type]
    return flight_data.filter_conditions(p, "$1", flt)  # type: ignore[arg-type]


def seek_condition(p: Params, kind: Kind, after: tuple[Any, Any]) -> str:
    """Continue a root page after a cursor key (values bound into ``p``)."""
    columns = aircraft_data.ORDER_COLUMNS if kind == "aircraft" else flight_data.ORDER_COLUMNS
    return seek_after(columns, (p.add(after[0]), p.add(after[1])), kind == "flight")


def flights_of_conditions(p: Params, parent: str, after: tuple[Any, Any] | None) -> list[str]:
    """Conditions of an aircraft's flight page (``flights.pages_by_aircraft``)."""
    cond = ["f.org_id = $1", f"f.aircraft_id = {parent}.id"]
    if after is not None:
        cond.append(seek_after(flight_data.ORDER_COLUMNS, (p.add(after[0]), p.add(after[1])), True))
    return cond


# Columns a planned page carries: every field the schema exposes, never the
# internal jsonb ``metadata`` of flights (reading it would detoast it per row).
PAGE_COLUMNS: dict[Kind, str] = {
    "aircraft": "a.*",
    "flight": "f.id, f.org_id, f.aircraft_id, f.flight_number, f.origin, f.destination,"
    " f.departed_at, f.arrived_at, f.status, f.version, f.created_at, f.updated_at",
}


def page_source(kind: Kind, cond: Sequence[str], limit_param: str) -> str:
    """Rows of one page with their 1-based position ``dbx_rn``."""
    inner = INNER[kind]
    order = ORDER[kind]
    return (
        f"select {PAGE_COLUMNS[kind]}, row_number() over ({order}) as dbx_rn"
        f" from {TABLES[kind]} {inner} where {where(list(cond))} {order} limit {limit_param}"
    )


def count_source(kind: Kind, cond: Sequence[str]) -> str:
    inner = INNER[kind]
    return f"select count(*) from {TABLES[kind]} {inner} where {where(list(cond))}"


async def fetch_json(conn: TenantConnection, sql: str, values: Sequence[Any]) -> str:
    """Run a planned statement; its single value is the response's JSON text."""
    return str(await conn.fetchval(sql, *values))
