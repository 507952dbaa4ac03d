"""The ``Query`` root: viewer, aircraft, fleet, flight, flights, analytics.

Must not: write SQL (``gateway.data``) or open connections.
"""

from __future__ import annotations

import strawberry

from gateway.api import cursors
from gateway.api.analytics import Analytics
from gateway.api.inputs import AircraftFilter, FlightFilter
from gateway.api.permissions import CanAnalytics, CanRead
from gateway.api.plan.fields import AnalyticsPlan, PagePlan, RowPlan, plan
from gateway.api.types import (
    Aircraft,
    AircraftConnection,
    Flight,
    FlightConnection,
    GqlInfo,
    Viewer,
)
from gateway.data import aircraft as aircraft_data
from gateway.data import flights as flight_data
from gateway.errors import BadUserInput

MAX_FILTER_TEXT = 100


def _text(value: str | None, what: str) -> str | None:
    if value is not None and len(value) > MAX_FILTER_TEXT:
        raise BadUserInput(f"{what} is longer than {MAX_FILTER_TEXT} characters")
    return value


def aircraft_filter(f: AircraftFilter | None) -> aircraft_data.AircraftFilter | None:
    if f is None:
        return None
    return aircraft_data.AircraftFilter(
        status=None if f.status is None else f.status.value,
        manufacturer=_text(f.manufacturer, "manufacturer"),
        registration_prefix=_text(f.registration_prefix, "registrationPrefix"),
    )


def flight_filter(f: FlightFilter | None) -> flight_data.FlightFilter | None:
    if f is None:
        return None
    return flight_data.FlightFilter(
        aircraft_id=None
        if f.aircraft_id is None
        else cursors.parse_id(f.aircraft_id, "aircraftId"),
        status=None if f.status is None else f.status.value,
        origin=_text(f.origin, "origin"),
        destination=_text(f.destination, "destination"),
        departed_from=None if f.departed_from is None else cursors.utc(f.departed_from),
        departed_to=None if f.departed_to is None else cursors.utc(f.departed_to),
    )


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[CanRead], description="Who is asking.")
    def viewer(self, info: GqlInfo) -> Viewer:
        p = info.context.principal
        return Viewer(org_id=strawberry.ID(str(p.org_id)), subject=p.subject, roles=sorted(p.roles))

    @strawberry.field(permission_classes=[CanRead], metadata=plan(RowPlan("aircraft")))
    async def aircraft(self, info: GqlInfo, id: strawberry.ID) -> Aircraft | None:
        row = await info.context.loaders.aircraft.load(cursors.parse_id(id))
        return None if row is None else Aircraft.from_row(row)

    @strawberry.field(
        permission_classes=[CanRead],
        description="The fleet, by registration.",
        metadata=plan(PagePlan("aircraft", cursors.parse_aircraft_cursor, aircraft_filter)),
    )
    async def fleet(
        self,
        info: GqlInfo,
        first: int | None = 50,
        after: str | None = None,
        filter: AircraftFilter | None = None,
    ) -> AircraftConnection:
        ctx = info.context
        size = cursors.page_size(first, ctx.settings.limits.max_first)
        key = cursors.parse_aircraft_cursor(after)
        flt = aircraft_filter(filter)
        org = ctx.principal.org_id
        rows = await ctx.db.read(aircraft_data.page, org, limit=size + 1, after=key, flt=flt)
        ctx.loaders.prime_aircraft(rows)

        async def counter() -> int:
            return await ctx.db.read(aircraft_data.count, org, flt)

        return AircraftConnection.from_rows(rows, size, counter)

    @strawberry.field(permission_classes=[CanRead], metadata=plan(RowPlan("flight")))
    async def flight(self, info: GqlInfo, id: strawberry.ID) -> Flight | None:
        row = await info.context.loaders.flight.load(cursors.parse_id(id))
        return None if row is None else Flight.from_row(row)

    @strawberry.field(
        permission_classes=[CanRead],
        description="Flights, newest departure first.",
        metadata=plan(PagePlan("flight", cursors.parse_flight_cursor, flight_filter)),
    )
    async def flights(
        self,
        info: GqlInfo,
        first: int | None = 50,
        after: str | None = None,
        filter: FlightFilter | None = None,
    ) -> FlightConnection:
        ctx = info.context
        size = cursors.page_size(first, ctx.settings.limits.max_first)
        key = cursors.parse_flight_cursor(after)
        flt = flight_filter(filter)
        org = ctx.principal.org_id
        rows = await ctx.db.read(flight_data.page, org, limit=size + 1, after=key, flt=flt)
        ctx.loaders.prime_flights(rows)

        async def counter() -> int:
            return await ctx.db.read(flight_data.count, org, flt)

        return FlightConnection.from_rows(rows, size, counter)

    @strawberry.field(
        permission_classes=[CanAnalytics],
        description="Always served by replicas.",
        metadata=plan(AnalyticsPlan()),
    )
    def analytics(self) -> Analytics:
        return Analytics()
