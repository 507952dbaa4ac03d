"""The GraphQL object types: aircraft, flights, telemetry, maintenance, the
viewer, and their Relay connections. Nested fields resolve through the
per-request loaders (``gateway.api.loaders``), never one query per parent.

Must not: write SQL (``gateway.data``) or open connections.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Annotated, Protocol, TypeVar

import asyncpg
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway.api import cursors
from gateway.api.context import Context
from gateway.api.plan.fields import PagePlan, PartPlan, RelatedPlan, column, part, plan, row_reader
from gateway.data.planned_sources import FLIGHTS_OF_AIRCRAFT, aircraft_of_flight, latest_flight_of
from gateway.errors import NotFound

GqlInfo = Info[Context, None]


@strawberry.enum(description="Lifecycle state of an aircraft.")
class AircraftStatus(enum.Enum):
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


@strawberry.enum(description="Lifecycle state of a flight.")
class FlightStatus(enum.Enum):
    SCHEDULED = "scheduled"
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DIVERTED = "diverted"


@strawberry.enum(description="Kind of maintenance work.")
class MaintenanceKind(enum.Enum):
    INSPECTION = "inspection"
    REPAIR = "repair"
    REPLACEMENT = "replacement"


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


@strawberry.type
class PageInfo:
    has_next_page: bool = part("hasNextPage")
    end_cursor: str | None = part("endCursor")


@strawberry.type(description="An organization (tenant).")
class Organization:
    id: strawberry.ID
    name: str
    slug: str
    kind: str


@strawberry.type(description="Who is asking: the verified token's claims.")
class Viewer:
    org_id: strawberry.ID
    subject: str
    roles: list[str]

    @strawberry.field
    async def organization(self, info: GqlInfo) -> Organization | None:
        from gateway.data import organizations

        ctx = info.context
        row = await ctx.db.read(organizations.get, ctx.principal.org_id)
        if row is None:
            return None
        return Organization(
            id=strawberry.ID(str(row["id"])), name=row["name"], slug=row["slug"], kind=row["kind"]
        )


@strawberry.type(description="A maintenance event recorded against an aircraft.")
class MaintenanceEvent:
    id: strawberry.ID
    aircraft_id: strawberry.ID
    component: str
    kind: MaintenanceKind
    performed_at: dt.datetime
    findings: str | None
    aircraft_hours: float | None
    recorded_by: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> MaintenanceEvent:
        return cls(
            id=strawberry.ID(str(r["id"])),
            aircraft_id=strawberry.ID(str(r["aircraft_id"])),
            component=r["component"],
            kind=MaintenanceKind(r["kind"]),
            performed_at=r["performed_at"],
            findings=r["findings"],
            aircraft_hours=_float(r["aircraft_hours"]),
            recorded_by=r["recorded_by"],
            created_at=r["created_at"],
        )


@strawberry.type(description="One telemetry sample of a flight.")
class TelemetryPoint:
    recorded_at: dt.datetime
    altitude_m: float | None
    airspeed_ms: float | None
    latitude: float | None
    longitude: float | None
    heading_deg: float | None
    vertical_speed_ms: float | None
    engine_temp_c: float | None
    fuel_flow_kg_h: float | None

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> TelemetryPoint:
        return cls(
            recorded_at=r["recorded_at"],
            altitude_m=r["altitude_m"],
            airspeed_ms=r["airspeed_ms"],
            latitude=r["latitude"],
            longitude=r["longitude"],
            heading_deg=r["heading_deg"],
            vertical_speed_ms=r["vertical_speed_ms"],
            engine_temp_c=r["engine_temp_c"],
            fuel_flow_kg_h=r["fuel_flow_kg_h"],
        )


@strawberry.type(description="Aggregates over all telemetry of a flight.")
class TelemetrySummary:
    point_count: int
    first_recorded_at: dt.datetime | None
    last_recorded_at: dt.datetime | None
    max_altitude_m: float | None
    max_airspeed_ms: float | None
    avg_engine_temp_c: float | None


Counter = Callable[[], Awaitable[int]]


@strawberry.type
class TelemetryEdge:
    cursor: str
    node: TelemetryPoint


@strawberry.type
class TelemetryConnection:
    edges: list[TelemetryEdge]
    page_info: PageInfo
    counter: strawberry.Private[Counter]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.counter()


class _Edge(Protocol):
    cursor: str


E = TypeVar("E", bound=_Edge)


def _page(
    rows: Sequence[asyncpg.Record], size: int, edge: Callable[[asyncpg.Record], E]
) -> tuple[list[E], PageInfo]:
    """Edges of a keyset page fetched with ``limit size + 1``: the extra row
    only says whether there is a next page."""
    edges = [edge(r) for r in rows[:size]]
    end = edges[-1].cursor if edges else None
    return edges, PageInfo(has_next_page=len(rows) > size, end_cursor=end)


@strawberry.type
class FlightEdge:
    cursor: str = part("cursor")
    node: Flight = part("node")


@strawberry.type
class FlightConnection:
    edges: list[FlightEdge] = part("edges")
    page_info: PageInfo = part("pageInfo")
    counter: strawberry.Private[Counter]

    @strawberry.field(metadata=plan(PartPlan("totalCount")))
    async def total_count(self) -> int:
        return await self.counter()

    @classmethod
    def from_rows(
        cls, rows: Sequence[asyncpg.Record], size: int, counter: Counter
    ) -> FlightConnection:
        edges, page_info = _page(
            rows,
            size,
            lambda r: FlightEdge(
                cursor=cursors.flight_cursor(r["departed_at"], r["id"]), node=Flight.from_row(r)
            ),
        )
        return cls(edges=edges, page_info=page_info, counter=counter)


@strawberry.type
class AircraftEdge:
    cursor: str = part("cursor")
    node: Aircraft = part("node")


@strawberry.type
class AircraftConnection:
    edges: list[AircraftEdge] = part("edges")
    page_info: PageInfo = part("pageInfo")
    counter: strawberry.Private[Counter]

    @strawberry.field(metadata=plan(PartPlan("totalCount")))
    async def total_count(self) -> int:
        return await self.counter()

    @classmethod
    def from_rows(
        cls, rows: Sequence[asyncpg.Record], size: int, counter: Counter
    ) -> AircraftConnection:
        edges, page_info = _page(
            rows,
            size,
            lambda r: AircraftEdge(
                cursor=cursors.aircraft_cursor(r["registration"], r["id"]),
                node=Aircraft.from_row(r),
            ),
        )
        return cls(edges=edges, page_info=page_info, counter=counter)


@strawberry.type(description="An aircraft of the caller's organization.")
class Aircraft:
    # Each scalar names its column once: the resolver path reads it from the
    # row (``from_row``), the planner writes it as JSON (``gateway.api.plan``).
    id: strawberry.ID = column("id")
    registration: str = column("registration", "code")  # ^[A-Z0-9][A-Z0-9-]{1,9}$
    manufacturer: str = column("manufacturer")
    model: str = column("model")
    serial_number: str | None = column("serial_number")
    status: AircraftStatus = column("status")
    specs: JSON = column("specs")
    total_flight_hours: float = column("total_flight_hours", "numeric")
    version: int = column("version")
    created_at: dt.datetime = column("created_at")
    updated_at: dt.datetime = column("updated_at")
    retired_at: dt.datetime | None = column("retired_at")
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> Aircraft:
        return cls(**_aircraft_columns(r), row_id=r["id"])

    @strawberry.field(
        description="This aircraft's flights, newest departure first.",
        metadata=plan(PagePlan("flight", cursors.parse_flight_cursor, parent=FLIGHTS_OF_AIRCRAFT)),
    )
    async def flights(
        self, info: GqlInfo, first: int | None = 10, after: str | None = None
    ) -> FlightConnection:
        ctx = info.context
        size = cursors.page_size(first, ctx.settings.limits.max_first)
        key = cursors.parse_flight_cursor(after)
        rows = await ctx.loaders.aircraft_flights.load((self.row_id, size + 1, key))

        async def counter() -> int:
            return int(await ctx.loaders.aircraft_flight_count.load(self.row_id))

        return FlightConnection.from_rows(rows, size, counter)

    @strawberry.field(
        description="The most recent departure, if any.",
        metadata=plan(RelatedPlan(latest_flight_of)),
    )
    async def latest_flight(self, info: GqlInfo) -> Flight | None:
        rows = await info.context.loaders.aircraft_flights.load((self.row_id, 1, None))
        return Flight.from_row(rows[0]) if rows else None

    @strawberry.field(description="The latest maintenance events, newest first.")
    async def maintenance_events(
        self, info: GqlInfo, first: int | None = 20
    ) -> list[MaintenanceEvent]:
        ctx = info.context
        size = cursors.page_size(first, ctx.settings.limits.max_first)
        rows = await ctx.loaders.maintenance.load((self.row_id, size))
        return [MaintenanceEvent.from_row(r) for r in rows]


@strawberry.type(description="A flight of one of the caller's aircraft.")
class Flight:
    id: strawberry.ID = column("id")
    flight_number: str = column("flight_number", "code")  # ^[A-Z0-9]{2,8}$
    origin: str = column("origin", "code")  # ^[A-Z]{4}$
    destination: str = column("destination", "code")  # ^[A-Z]{4}$
    departed_at: dt.datetime = column("departed_at")
    arrived_at: dt.datetime | None = column("arrived_at")
    status: FlightStatus = column("status")
    version: int = column("version")
    row_id: strawberry.Private[uuid.UUID]
    aircraft_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> Flight:
        return cls(**_flight_columns(r), row_id=r["id"], aircraft_row_id=r["aircraft_id"])

    @strawberry.field(metadata=plan(RelatedPlan(aircraft_of_flight)))
    async def aircraft(self, info: GqlInfo) -> Aircraft:
        row = await info.context.loaders.aircraft.load(self.aircraft_row_id)
        if row is None:
            raise NotFound("The flight's aircraft was not found")
        return Aircraft.from_row(row)

    @strawberry.field(description="Telemetry in time order; `from` inclusive, `to` exclusive.")
    async def telemetry(
        self,
        info: GqlInfo,
        first: int | None = 100,
        after: str | None = None,
        from_: Annotated[dt.datetime | None, strawberry.argument(name="from")] = None,
        to: dt.datetime | None = None,
    ) -> TelemetryConnection:
        ctx = info.context
        size = cursors.page_size(first, ctx.settings.limits.max_first)
        key = cursors.parse_telemetry_cursor(after)
        t_from = None if from_ is None else cursors.utc(from_)
        t_to = None if to is None else cursors.utc(to)
        rows = await ctx.loaders.telemetry.load((self.row_id, size + 1, key, t_from, t_to))
        shown = rows[:size]
        edges = [
            TelemetryEdge(
                cursor=cursors.telemetry_cursor(r["recorded_at"]), node=TelemetryPoint.from_row(r)
            )
            for r in shown
        ]

        async def counter() -> int:
            return int(await ctx.loaders.telemetry_count.load((self.row_id, t_from, t_to)))

        return TelemetryConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None
            ),
            counter=counter,
        )

    @strawberry.field
    async def telemetry_summary(self, info: GqlInfo) -> TelemetrySummary:
        r = await info.context.loaders.telemetry_summary.load(self.row_id)
        if r is None:
            return TelemetrySummary(
                point_count=0,
                first_recorded_at=None,
                last_recorded_at=None,
                max_altitude_m=None,
                max_airspeed_ms=None,
                avg_engine_temp_c=None,
            )
        return TelemetrySummary(
            point_count=int(r["point_count"]),
            first_recorded_at=r["first_recorded_at"],
            last_recorded_at=r["last_recorded_at"],
            max_altitude_m=r["max_altitude_m"],
            max_airspeed_ms=r["max_airspeed_ms"],
            avg_engine_temp_c=_float(r["avg_engine_temp_c"]),
        )


_aircraft_columns = row_reader(Aircraft)
_flight_columns = row_reader(Flight)


@strawberry.type
class RejectedPoint:
    index: int
    reason: str


@strawberry.type(description="Outcome of a telemetry ingest: accepted points landed all together.")
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[RejectedPoint]
