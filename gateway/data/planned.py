"""SQL pieces for planned reads (``gateway.api.plan``): how each planned
GraphQL value is written as compact JSON text by PostgreSQL, exactly as
the resolver path would serialise it (DateTime as Python's ``isoformat()``
in UTC, enums upper-case, numeric as float8, Relay cursors as base64url of
compact JSON), the keyset page source of a connection, the shape of the
statement, and the one data function that runs a planned statement and
hands back its JSON text.

Page sources reuse the filters, seek predicates and orderings of
``gateway.data.aircraft`` and ``gateway.data.flights``, so both paths page
alike. Every source filters ``org_id`` explicitly besides row-level security.

Objects and lists are concatenated text, not ``json_build_object`` /
``json_agg``: about a third cheaper for PostgreSQL, and compact. Plain
values go through ``to_json`` (as ``json_build_object`` would write them)
unless their text needs no escaping. Analytics numbers are written number
by number as ``orjson`` prints the resolvers' Python values, over the very
statements of ``gateway.data.analytics*`` (their placeholders renumbered).

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from gateway.data import aircraft as aircraft_data
from gateway.data import analytics as analytics_data
from gateway.data import analytics_telemetry as telemetry_data
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
        ' then \'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\''
        ' else \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\' end)'
    )


def _base64url(text_expr: str) -> str:
    # PostgreSQL's base64 wraps lines and uses +/; cursors are unpadded base64url.
    return (
        f"rtrim(translate(encode(convert_to({text_expr}, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"
    )


def cursor(kind: Kind, t: str) -> str:
    """``gateway.api.cursors.aircraft_cursor`` / ``flight_cursor`` in SQL,
    as JSON text (base64url needs no escaping). Registrations are
    ``[A-Z0-9-]`` only (a check constraint), so ``to_json`` escapes them as
    Python's ``json.dumps`` does."""
    if kind == "aircraft":
        key = f"to_json({t}.registration)::text || ',\"' || {t}.id::text || '\"'"
    else:
        key = f"'\"' || {timestamp(f'{t}.departed_at')} || '\",\"' || {t}.id::text || '\"'"
    return (
        "'\"' || " + _base64url(f'\'{{"v":1,"t":"{kind}","k":[\' || {key} || \']}}\'') + " || '\"'"
    )


def _json(expr: str) -> str:
    """JSON text of any value exactly as ``json_build_object`` would write
    it (``to_json``), ``null`` for NULL."""
    return f"coalesce(to_json({expr})::text, 'null')"


def string_text(expr: str) -> str:
    """JSON text of a value whose text needs no escaping (uuids, upper-case
    enum labels, dates, timestamps, and the codes the tables' check
    constraints hold to ``[A-Z0-9-]``), ``null`` for NULL."""
    return f"coalesce('\"' || {expr} || '\"', 'null')"


def int_text(expr: str) -> str:
    return f"coalesce(({expr})::text, 'null')"


# GraphQL field name -> JSON text expression over a row alias ``{t}``.
AIRCRAFT_FIELDS: dict[str, str] = {
    "id": string_text("{t}.id::text"),
    "registration": string_text("{t}.registration"),  # ^[A-Z0-9][A-Z0-9-]{1,9}$
    "manufacturer": _json("{t}.manufacturer"),
    "model": _json("{t}.model"),
    "serialNumber": _json("{t}.serial_number"),
    "status": string_text("upper({t}.status)"),
    "specs": _json("{t}.specs"),
    "totalFlightHours": _json("{t}.total_flight_hours::float8"),
    "version": int_text("{t}.version"),
    "createdAt": string_text(timestamp("{t}.created_at")),
    "updatedAt": string_text(timestamp("{t}.updated_at")),
    "retiredAt": string_text(timestamp("{t}.retired_at")),
}
FLIGHT_FIELDS: dict[str, str] = {
    "id": string_text("{t}.id::text"),
    "flightNumber": string_text("{t}.flight_number"),  # ^[A-Z0-9]{2,8}$
    "origin": string_text("{t}.origin"),  # ^[A-Z]{4}$
    "destination": string_text("{t}.destination"),  # ^[A-Z]{4}$
    "departedAt": string_text(timestamp("{t}.departed_at")),
    "arrivedAt": string_text(timestamp("{t}.arrived_at")),
    "status": string_text("upper({t}.status)"),
    "version": int_text("{t}.version"),
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


async def fetch_json(conn: TenantConnection, sql: str, values: Sequence[Any]) -> str | None:
    """Run a planned statement; its row's values, joined, are the response's
    JSON text (None: no row or a NULL, the statement declined; the resolver
    path answers)."""
    row = await conn.fetchrow(sql, *values)
    if row is None:
        return None
    parts = tuple(row)  # (``in`` on a Record tests its column names)
    return None if None in parts else "".join(parts)


# -- analytics ----------------------------------------------------------------

AnalyticsKind = Literal["fleetDailyStats", "fleetStats", "telemetryStats", "telemetrySeries"]
# GraphQL type of each field's objects
ANALYTICS_TYPES: dict[AnalyticsKind, str] = {
    "fleetDailyStats": "DailyFleetStats",
    "fleetStats": "AircraftFlightStats",
    "telemetryStats": "TelemetryStats",
    "telemetrySeries": "SeriesPoint",
}


def float_text(expr: str) -> str:
    """JSON text of a float8 exactly as ``orjson`` writes the Python float
    asyncpg hands the resolvers: a ``.0`` on integral values, plain decimals
    for decimal exponents -5..15, else ``1.5e-7`` / ``1e+16`` style. PostgreSQL
    prints the same shortest digits (``extra_float_digits`` > 0, checked by
    the statement) but switches to exponents at -5 and 15: zero and
    magnitudes in [1e-4, 1e15) are written here, the rest by
    ``dbx_analytics.json_float_rare`` (migration 0011; the expression
    PostgreSQL sets up per execution stays small). Non-finite values and
    magnitudes from 1e16 (where PostgreSQL prints integral values with more
    digits than the shortest) fail the statement: the resolvers answer."""
    v = f"({expr})"
    plain = f"case when {v} = trunc({v}) then {v}::text || '.0' else {v}::text end"
    # NULL, NaN and the infinities all fail the first test
    return (
        f"case when {v} = 0 or (abs({v}) >= 1e-4 and abs({v}) < 1e15) then {plain}"
        f" when {v} is null then 'null'"
        f" else dbx_analytics.json_float_rare({v}) end"
    )


# GraphQL field name -> JSON text expression over the data statement's row ``{t}``.
ANALYTICS_FIELDS: dict[AnalyticsKind, dict[str, str]] = {
    "fleetDailyStats": {
        "day": string_text("to_char({t}.day, 'YYYY-MM-DD')"),
        "flights": int_text("{t}.flights"),
        "flightHours": float_text("{t}.flight_hours"),
        "activeAircraft": int_text("{t}.active_aircraft"),
        "maxAltitudeM": float_text("{t}.max_altitude_m"),
        "avgAirspeedMs": float_text("{t}.avg_airspeed_ms"),
        "exceedances": int_text("{t}.exceedances"),
        "refreshedAt": string_text(timestamp("{t}.refreshed_at")),
    },
    "fleetStats": {
        "aircraftId": string_text("{t}.aircraft_id::text"),
        "registration": string_text("{t}.registration"),  # ^[A-Z0-9][A-Z0-9-]{1,9}$
        "flights": int_text("{t}.flights"),
        "completed": int_text("{t}.completed"),
        "flightHours": float_text("{t}.flight_hours"),
        "lastDepartedAt": string_text(timestamp("{t}.last_departed_at")),
    },
    # ``metric``, ``windowStart`` and ``windowEnd`` are request values (bound)
    "telemetryStats": {
        "metric": "",
        "count": int_text("{t}.n"),
        "min": float_text("{t}.min"),
        "max": float_text("{t}.max"),
        "avg": float_text("{t}.avg"),
        "stddev": float_text("{t}.stddev"),
        "p50": float_text("{t}.pct[1]"),
        "p95": float_text("{t}.pct[2]"),
        "p99": float_text("{t}.pct[3]"),
        "windowStart": "",
        "windowEnd": "",
    },
    "telemetrySeries": {
        "bucket": string_text(timestamp("{t}.bucket")),
        "count": int_text("{t}.n"),
        "avg": float_text("{t}.avg"),
        "min": float_text("{t}.min"),
        "max": float_text("{t}.max"),
        "movingAverage": float_text("{t}.moving_average"),
    },
}


def analytics_value(kind: AnalyticsKind, field: str, t: str) -> str:
    return ANALYTICS_FIELDS[kind][field].replace("{t}", t)


_PLACEHOLDER = re.compile(r"\$([0-9]+)")


def _renumbered(p: Params, sql: str, args: Sequence[Any]) -> str:
    """A data-layer statement with its values bound into ``p``; the request's
    org (``p``'s ``$1``) keeps ``$1``."""
    org = p.values[0]
    if org not in args:
        raise ValueError("the statement is not the request's org's")
    slots = ["$1" if v is org or v == org else p.add(v) for v in args]
    return _PLACEHOLDER.sub(lambda m: slots[int(m.group(1)) - 1], sql)


def daily_stats_source(p: Params, org_id: uuid.UUID, start: date, end: date) -> str:
    """``analytics.daily_stats_query``: rows ordered by (unique) ``day``."""
    q = analytics_data.daily_stats_query(org_id, start, end)
    return _renumbered(p, q.sql, q.args)


def fleet_stats_source(p: Params, org_id: uuid.UUID, since: datetime) -> str:
    """``analytics.fleet_stats_query``: rows ordered by (unique) ``registration``."""
    q = analytics_data.fleet_stats_query(org_id, since)
    return _renumbered(p, q.sql, q.args)


def telemetry_stats_source(p: Params, scope: telemetry_data.TelemetryScope, metric: str) -> str:
    """``analytics_telemetry.stats_query``: one row."""
    q = telemetry_data.stats_query(scope, metric)
    return _renumbered(p, q.sql, q.args)


def telemetry_series_source(
    p: Params,
    scope: telemetry_data.TelemetryScope,
    metric: str,
    bucket_seconds: int,
    moving_average_window: int | None,
) -> str:
    """``analytics_telemetry.series_query``: rows ordered by (unique) ``bucket``,
    at most ``MAX_BUCKETS + 1`` of them."""
    q = telemetry_data.series_query(scope, metric, bucket_seconds, moving_average_window)
    return _renumbered(p, q.sql, q.args)


class Chain(str):
    """SQL text of a concatenation that yields JSON text, with its pieces:
    ``(True, json)`` a constant, ``(False, sql)`` an expression. Nesting one
    in another splices the pieces and merges neighbouring constants: each
    ``||`` copies the whole text to its left, so a list written as
    ``'{"k":' || (select '[' || agg || ']') || '}'`` and wrapped in two more
    objects was copied six times, each copy a fresh allocation in the
    backend; spliced it is ``'{"a":{"b":{"k":[' || (select agg) || ']}}}'``,
    copied twice."""

    parts: tuple[tuple[bool, str], ...]


def chain(pieces: Sequence[tuple[bool, str] | str]) -> Chain:
    """A ``Chain`` of JSON text constants, ``Chain`` values (spliced) and
    other SQL expressions (a ``str``), in order."""
    parts: list[tuple[bool, str]] = []
    for piece in pieces:
        for is_const, text in _pieces(piece):
            if is_const and parts and parts[-1][0]:
                parts[-1] = (True, parts[-1][1] + text)
            else:
                parts.append((is_const, text))
    sql = " || ".join(literal(text) if is_const else text for is_const, text in parts)
    out = Chain(sql if len(parts) == 1 else f"({sql})")
    out.parts = tuple(parts)
    return out


def _pieces(piece: tuple[bool, str] | str) -> Sequence[tuple[bool, str]]:
    if isinstance(piece, Chain):
        return piece.parts
    if isinstance(piece, tuple):
        return (piece,)
    return ((False, piece),)


def text_object(parts: Sequence[tuple[str, str]]) -> Chain:
    """Compact JSON object text from (GraphQL name, JSON text expression)."""
    pieces: list[tuple[bool, str] | str] = []
    for i, (key, value) in enumerate(parts):
        pieces += [(True, ("{" if i == 0 else ",") + f'"{key}":'), value]
    pieces.append((True, "}" if parts else "{}"))
    return chain(pieces)


def text_list(item: str, source: str, t: str, order: str, max_rows: int | None = None) -> Chain:
    """Compact JSON array text of ``item`` over the rows of ``source`` in
    ``order``; more than ``max_rows`` rows (the resolver's error) fail the
    statement. The brackets stay outside the subquery (one value, also over
    no rows), so an enclosing object merges them with its own constants."""
    if max_rows is None:
        # ARRAY(...) keeps the subquery's order: a source already in that
        # order (a function's ORDER BY) is not sorted again, as the ordered
        # aggregate would (a tenth of fleetStats' PostgreSQL time for 1000 rows)
        items = f"array_to_string(array(select {item} from ({source}) {t} order by {order}), ',')"
        return chain([(True, "["), items, (True, "]")])
    agg = (
        f"case when count(*) > {int(max_rows)}"
        f" then ('not planned: ' || count(*)::text)::int::text"
        f" else coalesce(string_agg({item}, ',' order by {order}), '') end"
    )
    return chain([(True, "["), f"(select {agg} from ({source}) {t})", (True, "]")])


def text_row(item: str, source: str, t: str, cond: str = "true") -> str:
    """JSON text of ``item`` over the single row of ``source``."""
    return f"(select {item} from ({source}) {t} where {cond})"


# float_text needs PostgreSQL's shortest float output; otherwise decline.
SHORTEST_FLOATS = "current_setting('extra_float_digits')::int > 0"


# -- statement shape ------------------------------------------------------------
# The planner (``gateway.api.plan.sql``) walks a plan and nests these; every
# piece of SQL text it sends comes from here. Every value is compact JSON
# *text* built by concatenation (cheaper for PostgreSQL than
# ``json_build_object``/``json_agg``, and the bytes go into the response as
# they are), so no piece may ever be NULL: a NULL would blank the whole text.


def literal(text: str) -> str:
    """A string constant. Callers pass GraphQL names ([_A-Za-z][_0-9A-Za-z]*)
    or JSON text made of them; quotes are doubled all the same."""
    return "'" + text.replace("'", "''") + "'"


def json_string(text: str) -> Chain:
    """JSON text of a string constant (a GraphQL name)."""
    return chain([(True, f'"{text}"')])


def _columns(obj: str) -> str:
    """The pieces of the ``data`` object's text as columns, in order: joined
    by ``fetch_json``, not by ``||`` (which would copy the whole text once
    more per piece after the first)."""
    return ", ".join(literal(text) if is_const else text for is_const, text in _pieces(obj))


def root_statement(obj: str) -> str:
    """The statement: one row, the pieces of the response's ``data`` object.
    ``$1`` (the org) is referenced even when no table is read
    (``{ __typename }``)."""
    return f"select {_columns(obj)} where $1::uuid is not null"


def analytics_statement(text_obj: str) -> str:
    """The statement for an ``analytics`` root: no row (the resolvers answer)
    unless the session prints shortest floats, which ``float_text`` needs."""
    return f"select {_columns(text_obj)} where {SHORTEST_FLOATS} and $1::uuid is not null"


def as_text(param: str) -> str:
    """A bound timestamp parameter's JSON text (bound as JSON text already)."""
    return f"{param}::text"


def all_bound(params: Sequence[str]) -> str:
    """A condition that references every parameter, so each one appears in
    the statement whether or not its value is selected."""
    return " and ".join(f"{p}::text is not null" for p in params)


def subquery(obj: str, source: str = "") -> str:
    """``obj`` over the single row of ``source`` (``from ... where ...``),
    ``null`` when there is none; no source: over no table."""
    return f"coalesce((select {obj} {source}), 'null')" if source else f"(select {obj})"


def count_value(kind: Kind, cond: Sequence[str]) -> str:
    return f"({count_source(kind, cond)})::text"


def page_object(obj: str, source: str, t: str) -> str:
    """``obj`` aggregated over the rows of a page ``source`` aliased ``t``
    (an aggregate over no rows still gives its one row)."""
    return f"(select {obj} from ({source}) {t})"


def page_edges(edge: str, t: str, size_param: str) -> Chain:
    """The page's first ``size`` rows as a JSON array of ``edge``; the
    page source reads one row more, for ``hasNextPage``."""
    agg = (
        f"coalesce(string_agg({edge}, ',' order by {t}.dbx_rn)"
        f" filter (where {t}.dbx_rn <= {size_param}), '')"
    )
    return chain([(True, "["), agg, (True, "]")])


def page_has_next(size_param: str) -> str:
    return f"case when count(*) > {size_param} then 'true' else 'false' end"


def page_end_cursor(kind: Kind, t: str, size_param: str) -> str:
    return (
        f"coalesce((array_agg({cursor(kind, t)} order by {t}.dbx_rn desc)"
        f" filter (where {t}.dbx_rn <= {size_param}))[1], 'null')"
    )
