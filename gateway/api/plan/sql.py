"""Plan tree to one SQL statement, and per-request argument binding.

``bind`` coerces the request's variables and each planned field's
arguments exactly as the resolvers do (``gateway.api.cursors`` and the
filter converters of ``gateway.api.query``); any argument the resolvers
would refuse raises ``Decline``, so the resolver path answers with its own
error. Binding hands out the placeholders, so the statement's text depends
only on the *shape* of the arguments (which filters and cursors are given);
``statement`` builds that text once per shape and the plan caches it.

The statement is a single ``select`` of the response's ``data`` as JSON
text: root fields are correlated subqueries, connections aggregate a keyset
page (``string_agg`` ordered by position, one extra row for ``hasNextPage``),
nested objects are correlated subqueries on the parent row. Every piece
of SQL text, the outer ``select`` included, comes from
``gateway.data.planned``; this module only nests the pieces.

Must not: write SQL text, run SQL or open connections.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from graphql import GraphQLError, GraphQLSchema
from graphql.execution.values import get_argument_values, get_variable_values

from gateway.api import cursors
from gateway.api.analytics import _uuid as analytics_id
from gateway.api.inputs import AircraftFilter, FlightFilter
from gateway.api.plan.compile import (
    Analytic,
    AnalyticsRoot,
    ById,
    Column,
    Connection,
    Cursor,
    Decline,
    Edges,
    EndCursor,
    HasNextPage,
    Node,
    PageInfo,
    Plan,
    Related,
    RowObject,
    Scalar,
    Selection,
    TotalCount,
    Typename,
)
from gateway.api.query import aircraft_filter, flight_filter
from gateway.api.types import AircraftStatus, FlightStatus
from gateway.data import analytics as analytics_data
from gateway.data import analytics_telemetry as telemetry_data
from gateway.data import planned
from gateway.data.fragments import Params
from gateway.errors import GatewayError

T = TypeVar("T")

PARENT = "{parent}"


@dataclass(frozen=True)
class Bound:
    """One argument-bearing field's placeholders and conditions."""

    id_param: str = ""
    cond: tuple[str, ...] = ()
    count_cond: tuple[str, ...] = ()
    size_param: str = ""
    limit_param: str = ""
    # analytics: the data layer's statement (placeholders bound), the metric
    # and the JSON texts of the window (placeholders)
    source: str = ""
    metric: str = ""
    window_params: tuple[str, str] = ("", "")


def _enum(cls: type[enum.Enum], value: Any) -> Any:
    if value is None:
        return None
    return value if isinstance(value, cls) else cls(getattr(value, "value", value))


def _aircraft_input(raw: Mapping[str, Any] | None) -> AircraftFilter | None:
    if raw is None:
        return None
    return AircraftFilter(
        status=_enum(AircraftStatus, raw.get("status")),
        manufacturer=raw.get("manufacturer"),
        registration_prefix=raw.get("registrationPrefix"),
    )


def _flight_input(raw: Mapping[str, Any] | None) -> FlightFilter | None:
    if raw is None:
        return None
    return FlightFilter(
        aircraft_id=raw.get("aircraftId"),
        status=_enum(FlightStatus, raw.get("status")),
        origin=raw.get("origin"),
        destination=raw.get("destination"),
        departed_from=raw.get("departedFrom"),
        departed_to=raw.get("departedTo"),
    )


def bind(
    plan: Plan,
    schema: GraphQLSchema,
    variables: dict[str, Any] | None,
    org_id: uuid.UUID,
    max_first: int,
) -> tuple[list[Bound], list[Any]]:
    """Placeholders per argument-bearing field and the values to send
    (``$1`` is the org), or ``Decline``."""
    try:
        coerced = get_variable_values(
            schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            raise Decline
        p = Params(org_id)
        bounds: list[Bound] = []
        for spec in plan.args:
            args = get_argument_values(spec.definition, spec.node, coerced)
            bounds.append(_bind_field(p, spec.name, args, max_first, spec.paged, spec.counted))
        return bounds, p.values
    except (GatewayError, GraphQLError, ValueError, TypeError, KeyError):
        raise Decline from None


def _json_time(value: dt.datetime | None) -> str:
    # as the resolver path serialises it: Strawberry's isoformat, then orjson
    return "null" if value is None else orjson.dumps(value.isoformat()).decode()


def _bind_analytics(p: Params, name: str, args: dict[str, Any]) -> Bound:
    """The resolver's checks and data-layer statement (``gateway.api.analytics``)."""
    org_id: uuid.UUID = p.values[0]
    if name == "Analytics.fleetDailyStats":
        start, end = args["from"], args["to"]
        analytics_data.check_days(start, end)
        return Bound(source=planned.daily_stats_source(p, org_id, start, end))
    if name == "Analytics.fleetStats":
        since = args["since"]
        analytics_data.check_since(since)
        return Bound(source=planned.fleet_stats_source(p, org_id, since))
    metric = str(getattr(args["metric"], "value", args["metric"]))
    telemetry_data.metric_column(metric)
    scope = telemetry_data.resolve_scope(
        org_id,
        flight_id=analytics_id(args.get("flightId"), "flightId"),
        aircraft_id=analytics_id(args.get("aircraftId"), "aircraftId"),
        start=args.get("from"),
        end=args.get("to"),
        now=dt.datetime.now(dt.UTC),
    )
    if name == "Analytics.telemetrySeries":
        bucket_seconds, window = args["bucketSeconds"], args.get("movingAverageWindow")
        telemetry_data.check_series(scope, bucket_seconds, window)
        return Bound(
            source=planned.telemetry_series_source(p, scope, metric, bucket_seconds, window)
        )
    source = planned.telemetry_stats_source(p, scope, metric)
    window = (p.add(_json_time(scope.start)), p.add(_json_time(scope.end)))
    return Bound(source=source, metric=metric, window_params=window)


def _bind_field(
    p: Params, name: str, args: dict[str, Any], max_first: int, paged: bool, counted: bool
) -> Bound:
    if name.startswith("Analytics."):
        return _bind_analytics(p, name, args)
    if name in ("aircraft", "flight"):
        return Bound(id_param=p.add(cursors.parse_id(args["id"])))
    # Arguments are checked even when only totalCount is asked: the resolver
    # refuses them all the same. Unused values are not sent (PostgreSQL cannot
    # type a parameter no statement text mentions): they go to a scratch Params.
    seek = p if paged else Params()
    p = p if paged or counted else Params()
    size = cursors.page_size(args.get("first"), max_first)
    if name == "Aircraft.flights":
        key = cursors.parse_flight_cursor(args.get("after"))
        cond = planned.flights_of_conditions(seek, PARENT, key)
        count = ["f.org_id = $1", f"f.aircraft_id = {PARENT}.id"]
    elif name == "fleet":
        aircraft_key = cursors.parse_aircraft_cursor(args.get("after"))
        aircraft_flt = aircraft_filter(_aircraft_input(args.get("filter")))
        count = planned.filter_conditions(p, "aircraft", aircraft_flt)
        cond = list(count)
        if aircraft_key is not None:
            cond.append(planned.seek_condition(seek, "aircraft", aircraft_key))
    else:
        flight_key = cursors.parse_flight_cursor(args.get("after"))
        flight_flt = flight_filter(_flight_input(args.get("filter")))
        count = planned.filter_conditions(p, "flight", flight_flt)
        cond = list(count)
        if flight_key is not None:
            cond.append(planned.seek_condition(seek, "flight", flight_key))
    if not paged:
        return Bound(cond=tuple(cond), count_cond=tuple(count))
    return Bound(
        cond=tuple(cond),
        count_cond=tuple(count),
        size_param=p.add(size),
        limit_param=p.add(size + 1),
    )


def shape(bounds: list[Bound]) -> tuple[Bound, ...]:
    """What the statement text depends on (frozen, so hashable)."""
    return tuple(bounds)


def statement(plan: Plan, bounds: list[Bound]) -> str:
    return _Emitter(bounds).root(plan.root)


class _Emitter:
    def __init__(self, bounds: list[Bound]) -> None:
        self.bounds = bounds
        self.n = 0

    def alias(self) -> str:
        self.n += 1
        return f"t{self.n}"

    def root(self, sel: Selection) -> str:
        if any(isinstance(n, AnalyticsRoot) for _, n in sel):
            return self.analytics_root(sel)
        return planned.root_statement(planned.text_object([(k, self.node(n, "")) for k, n in sel]))

    # -- analytics: compact JSON text ------------------------------------------
    def analytics_root(self, sel: Selection) -> str:
        obj = self._text_fields(sel, AnalyticsRoot, lambda n: self.analytics(n.selection))
        return planned.analytics_statement(obj)

    def analytics(self, sel: Selection) -> str:
        return self._text_fields(sel, Analytic, self.analytic)

    def _text_fields(self, sel: Selection, kind: type[T], render: Callable[[T], str]) -> str:
        """A JSON text object of ``__typename`` and ``kind`` entries."""
        parts: list[tuple[str, str]] = []
        for key, n in sel:
            if isinstance(n, Typename):
                parts.append((key, planned.json_string(n.name)))
            elif isinstance(n, kind):
                parts.append((key, render(n)))
            else:
                raise Decline
        return planned.text_object(parts)

    def analytic(self, a: Analytic) -> str:
        b = self.bounds[a.slot]
        t = self.alias()
        parts: list[tuple[str, str]] = []
        for key, n in a.selection:
            if isinstance(n, Typename):
                parts.append((key, planned.json_string(n.name)))
            elif isinstance(n, Scalar) and n.field == "metric":
                parts.append((key, planned.json_string(b.metric)))
            elif isinstance(n, Scalar) and n.field == "windowStart":
                parts.append((key, planned.as_text(b.window_params[0])))
            elif isinstance(n, Scalar) and n.field == "windowEnd":
                parts.append((key, planned.as_text(b.window_params[1])))
            elif isinstance(n, Scalar):
                parts.append((key, planned.analytics_value(a.kind, n.field, t)))
            else:
                raise Decline
        obj = planned.text_object(parts)
        if a.kind == "fleetDailyStats":
            return planned.text_list(obj, b.source, t, f"{t}.day")
        if a.kind == "fleetStats":
            return planned.text_list(obj, b.source, t, f"{t}.registration")
        if a.kind == "telemetrySeries":
            limit = telemetry_data.MAX_BUCKETS
            return planned.text_list(obj, b.source, t, f"{t}.bucket", limit)
        # every bound value must appear in the text, selected or not
        return planned.text_row(obj, b.source, t, planned.all_bound(b.window_params))

    def row(self, kind: planned.Kind, sel: Selection, t: str) -> str:
        return planned.text_object([(k, self.node(n, t, kind)) for k, n in sel])

    def node(self, n: Node, t: str, kind: planned.Kind = "aircraft") -> str:
        if isinstance(n, Typename):
            return planned.json_string(n.name)
        if isinstance(n, Column):
            return planned.column(n.kind, n.field, t)
        if isinstance(n, ById):
            s = self.alias()
            obj = self.row(n.kind, n.selection, s)
            return planned.subquery(obj, planned.by_id(n.kind, s, self.bounds[n.slot].id_param))
        if isinstance(n, Related):
            s = self.alias()
            obj = self.row(n.kind, n.selection, s)
            source = (
                planned.aircraft_of_flight(s, t)
                if n.kind == "aircraft"
                else planned.latest_flight_of(s, t)
            )
            return planned.subquery(obj, source)
        if isinstance(n, Connection):
            return self.connection(n, t)
        raise Decline  # edge and page parts are handled by ``connection``

    def connection(self, c: Connection, parent: str) -> str:
        b = self.bounds[c.slot]
        s = self.alias()
        paged = False
        parts: list[tuple[str, str]] = []
        for key, part in c.selection:
            if isinstance(part, Typename):
                parts.append((key, planned.json_string(part.name)))
            elif isinstance(part, TotalCount):
                cond = [x.replace(PARENT, parent) for x in b.count_cond]
                parts.append((key, planned.count_value(c.kind, cond)))
            elif isinstance(part, Edges):
                paged = True
                parts.append((key, planned.page_edges(self.edge(c, part, s), s, b.size_param)))
            elif isinstance(part, PageInfo):
                paged = True
                parts.append((key, self.page_info(c, part, s)))
        obj = planned.text_object(parts)
        if not paged:
            return planned.subquery(obj)
        cond = [x.replace(PARENT, parent) for x in b.cond]
        return planned.page_object(obj, planned.page_source(c.kind, cond, b.limit_param), s)

    def edge(self, c: Connection, e: Edges, s: str) -> str:
        parts: list[tuple[str, str]] = []
        for key, part in e.selection:
            if isinstance(part, Typename):
                parts.append((key, planned.json_string(part.name)))
            elif isinstance(part, Cursor):
                parts.append((key, planned.cursor(c.kind, s)))
            elif isinstance(part, RowObject):
                parts.append((key, self.row(part.kind, part.selection, s)))
        return planned.text_object(parts)

    def page_info(self, c: Connection, pi: PageInfo, s: str) -> str:
        size = self.bounds[c.slot].size_param
        parts: list[tuple[str, str]] = []
        for key, part in pi.selection:
            if isinstance(part, Typename):
                parts.append((key, planned.json_string(part.name)))
            elif isinstance(part, HasNextPage):
                parts.append((key, planned.page_has_next(size)))
            elif isinstance(part, EndCursor):
                parts.append((key, planned.page_end_cursor(c.kind, s, size)))
        return planned.text_object(parts)
