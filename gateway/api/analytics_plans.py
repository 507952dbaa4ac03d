"""How the planner binds the planned ``Analytics`` fields (their
``AnalyticPlan``, declared in ``gateway.api.analytics``): the resolver's
own checks of the arguments, then the data layer's statement, its values
bound into the planned statement's placeholders.

Must not: write SQL text (``gateway.data.planned*``) or run anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import strawberry

from gateway.api.plan.fields import Bound
from gateway.data import analytics as fleet
from gateway.data import analytics_telemetry as telemetry
from gateway.data import planned
from gateway.data import planned_sources as sources
from gateway.data.fragments import Params
from gateway.errors import BadUserInput


def optional_id(value: strawberry.ID | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadUserInput(f"`{name}` is not a valid id") from None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def scope(org_id: uuid.UUID, args: dict[str, Any]) -> telemetry.TelemetryScope:
    """The window of ``telemetryStats`` / ``telemetrySeries`` (resolver arguments)."""
    return telemetry.resolve_scope(
        org_id,
        flight_id=optional_id(args.get("flight_id"), "flightId"),
        aircraft_id=optional_id(args.get("aircraft_id"), "aircraftId"),
        start=args.get("start"),
        end=args.get("end"),
        now=now(),
    )


def daily_stats(p: Params, org_id: uuid.UUID, args: dict[str, Any]) -> Bound:
    start, end = args["start"], args["end"]
    fleet.check_days(start, end)
    return Bound(source=sources.daily_stats_source(p, org_id, start, end))


def fleet_stats(p: Params, org_id: uuid.UUID, args: dict[str, Any]) -> Bound:
    since = args["since"]
    fleet.check_since(since)
    return Bound(source=sources.fleet_stats_source(p, org_id, since))


def _metric(args: dict[str, Any]) -> str:
    metric = str(args["metric"].value)
    telemetry.metric_column(metric)
    return metric


def _json_time(value: dt.datetime | None) -> str:
    # as the resolver path serialises it: Strawberry's isoformat, then orjson
    return "null" if value is None else orjson.dumps(value.isoformat()).decode()


def telemetry_stats(p: Params, org_id: uuid.UUID, args: dict[str, Any]) -> Bound:
    metric = _metric(args)
    window = scope(org_id, args)
    source = sources.telemetry_stats_source(p, window, metric)
    start, end = p.add(_json_time(window.start)), p.add(_json_time(window.end))
    values = (
        ("metric", planned.json_string(metric)),
        ("window_start", planned.as_text(start)),
        ("window_end", planned.as_text(end)),
    )
    return Bound(source=source, values=values, row_cond=planned.all_bound((start, end)))


def telemetry_series(p: Params, org_id: uuid.UUID, args: dict[str, Any]) -> Bound:
    metric = _metric(args)
    window = scope(org_id, args)
    bucket_seconds, moving = args["bucket_seconds"], args.get("moving_average_window")
    telemetry.check_series(window, bucket_seconds, moving)
    return Bound(source=sources.telemetry_series_source(p, window, metric, bucket_seconds, moving))
