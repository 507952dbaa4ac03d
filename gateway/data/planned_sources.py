"""Row sources of planned statements: one row by id, the related row of a
row, the keyset page and count of a connection, and the analytics
statements of ``gateway.data.analytics*`` with their placeholders
renumbered into the planned statement's.

Page sources reuse the filters, seek predicates and orderings of
``gateway.data.aircraft`` and ``gateway.data.flights``, so both paths page
alike. Every source filters ``org_id`` explicitly besides row-level security.

Must not: know GraphQL names, choose a database node.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.data import aircraft as aircraft_data
from gateway.data import analytics as analytics_data
from gateway.data import analytics_telemetry as telemetry_data
from gateway.data import flights as flight_data
from gateway.data.fragments import Params, seek_after, where
from gateway.data.planned_values import Kind

TABLES: dict[Kind, str] = {"aircraft": "dbx_aviation.aircraft", "flight": "dbx_aviation.flights"}
# Alias the data layer's filters and orderings are written against.
INNER: dict[Kind, str] = {"aircraft": "a", "flight": "f"}
ORDER: dict[Kind, str] = {
    "aircraft": "order by a.registration, a.id",
    "flight": flight_data.ORDER_BY,
}
# Stands for the parent row's alias in a nested page's conditions, which are
# bound before the statement (and so the alias) is written.
PARENT = "{parent}"


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
    cond = flights_of_count_conditions(parent)
    if after is not None:
        cond.append(seek_after(flight_data.ORDER_COLUMNS, (p.add(after[0]), p.add(after[1])), True))
    return cond


def flights_of_count_conditions(parent: str) -> list[str]:
    """Conditions of the count of an aircraft's flights."""
    return ["f.org_id = $1", f"f.aircraft_id = {parent}.id"]


@dataclass(frozen=True)
class ParentLink:
    """How a nested connection's rows hang off their parent row (``PARENT``)."""

    page: Callable[[Params, str, tuple[Any, Any] | None], list[str]]
    count: Callable[[str], list[str]]


FLIGHTS_OF_AIRCRAFT = ParentLink(flights_of_conditions, flights_of_count_conditions)


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


# -- analytics ----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A data-layer statement, its values bound into the planned statement's
    placeholders; ``order``: the column its rows are listed by (unique), or
    empty for a statement of one row; more than ``max_rows`` rows fail the
    statement (the resolver's error)."""

    sql: str
    order: str = ""
    max_rows: int | None = None


_PLACEHOLDER = re.compile(r"\$([0-9]+)")


def _renumbered(p: Params, sql: str, args: Sequence[Any]) -> str:
    """A data-layer statement with its values bound into ``p``; the request's
    org (``p``'s ``$1``) keeps ``$1``."""
    org = p.values[0]
    if org not in args:
        raise ValueError("the statement is not the request's org's")
    slots = ["$1" if v is org or v == org else p.add(v) for v in args]
    return _PLACEHOLDER.sub(lambda m: slots[int(m.group(1)) - 1], sql)


def daily_stats_source(p: Params, org_id: uuid.UUID, start: date, end: date) -> Source:
    """``analytics.daily_stats_query``: rows by ``day``."""
    q = analytics_data.daily_stats_query(org_id, start, end)
    return Source(_renumbered(p, q.sql, q.args), "day")


def fleet_stats_source(p: Params, org_id: uuid.UUID, since: datetime) -> Source:
    """``analytics.fleet_stats_query``: rows by ``registration``."""
    q = analytics_data.fleet_stats_query(org_id, since)
    return Source(_renumbered(p, q.sql, q.args), "registration")


def telemetry_stats_source(p: Params, scope: telemetry_data.TelemetryScope, metric: str) -> Source:
    """``analytics_telemetry.stats_query``: one row."""
    q = telemetry_data.stats_query(scope, metric)
    return Source(_renumbered(p, q.sql, q.args))


def telemetry_series_source(
    p: Params,
    scope: telemetry_data.TelemetryScope,
    metric: str,
    bucket_seconds: int,
    moving_average_window: int | None,
) -> Source:
    """``analytics_telemetry.series_query``: rows by ``bucket``, at most
    ``MAX_BUCKETS`` of them."""
    q = telemetry_data.series_query(scope, metric, bucket_seconds, moving_average_window)
    return Source(_renumbered(p, q.sql, q.args), "bucket", telemetry_data.MAX_BUCKETS)
