"""The ``Mutation`` root. Each mutation is one write transaction on the
primary (never retried); a stale ``expectedVersion`` is ``CONFLICT``, an id
the caller cannot see is ``NOT_FOUND``.

Must not: write SQL (``gateway.data``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import strawberry

from gateway.api import cursors
from gateway.api.ingest import ingest
from gateway.api.inputs import (
    POINT_FIELDS,
    CreateAircraftInput,
    RecordMaintenanceInput,
    StartFlightInput,
    TelemetryPointInput,
    UpdateAircraftInput,
)
from gateway.api.permissions import CanWrite
from gateway.api.types import (
    Aircraft,
    AircraftStatus,
    Flight,
    GqlInfo,
    IngestResult,
    MaintenanceEvent,
    RejectedPoint,
)
from gateway.data import aircraft as aircraft_data
from gateway.data import flights as flight_data
from gateway.data import maintenance as maintenance_data
from gateway.data.fragments import json_text
from gateway.db.connection import TenantConnection
from gateway.errors import BadUserInput, Conflict, NotFound

REGISTRATION = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,9}$")
FLIGHT_NUMBER = re.compile(r"^[A-Z0-9]{2,8}$")
ICAO = re.compile(r"^[A-Z]{4}$")
MAX_SPECS_BYTES = 64 * 1024


def _text(value: str, what: str, max_len: int = 100) -> str:
    value = value.strip()
    if not 1 <= len(value) <= max_len:
        raise BadUserInput(f"{what} must be 1 to {max_len} characters")
    if "\x00" in value:
        raise BadUserInput(f"{what} must not contain NUL characters")
    return value


def _specs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput("specs must be a JSON object")
    text = json_text(value)
    if len(text) > MAX_SPECS_BYTES or "\\u0000" in text:
        raise BadUserInput("specs is too large or contains NUL characters")
    return value


async def _explain_missed_update(
    conn: TenantConnection, info: GqlInfo, aircraft_id: Any, expected_version: int
) -> Exception:
    row = await aircraft_data.get(conn, info.context.principal.org_id, aircraft_id)
    if row is None:
        return NotFound("Aircraft not found")
    if row["status"] == "retired" and row["version"] == expected_version:
        return BadUserInput("The aircraft is retired")
    return Conflict(
        f"The aircraft is at version {row['version']}, not {expected_version}; reload and retry",
        currentVersion=row["version"],
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_aircraft(self, info: GqlInfo, input: CreateAircraftInput) -> Aircraft:
        registration = input.registration.strip().upper()
        if not REGISTRATION.match(registration):
            raise BadUserInput("registration must be 2-10 characters: A-Z, 0-9 and '-'")
        ctx = info.context
        manufacturer = _text(input.manufacturer, "manufacturer")
        model = _text(input.model, "model")
        serial_number = (
            None if input.serial_number is None else _text(input.serial_number, "serialNumber")
        )
        specs = _specs(input.specs)
        async with ctx.db.write() as conn:
            row = await aircraft_data.create(
                conn,
                ctx.principal.org_id,
                registration=registration,
                manufacturer=manufacturer,
                model=model,
                serial_number=serial_number,
                specs=specs,
            )
            if row is None:
                raise Conflict(f"An aircraft with registration {registration} already exists")
        return Aircraft.from_row(row)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def update_aircraft(
        self, info: GqlInfo, id: strawberry.ID, expected_version: int, input: UpdateAircraftInput
    ) -> Aircraft:
        aircraft_id = cursors.parse_id(id)
        changes: dict[str, Any] = {}
        if input.manufacturer is not strawberry.UNSET and input.manufacturer is not None:
            changes["manufacturer"] = _text(input.manufacturer, "manufacturer")
        if input.model is not strawberry.UNSET and input.model is not None:
            changes["model"] = _text(input.model, "model")
        if input.status is not strawberry.UNSET and input.status is not None:
            if input.status is AircraftStatus.RETIRED:
                raise BadUserInput("Use retireAircraft to retire an aircraft")
            changes["status"] = input.status.value
        if input.specs is not strawberry.UNSET:
            changes["specs"] = _specs(input.specs)
        ctx = info.context
        async with ctx.db.write() as conn:
            row = await aircraft_data.update(
                conn, ctx.principal.org_id, aircraft_id, expected_version, changes
            )
            if row is None:
                raise await _explain_missed_update(conn, info, aircraft_id, expected_version)
        return Aircraft.from_row(row)

    @strawberry.mutation(permission_classes=[CanWrite], description="Soft retire: kept as history.")
    async def retire_aircraft(
        self, info: GqlInfo, id: strawberry.ID, expected_version: int
    ) -> Aircraft:
        aircraft_id = cursors.parse_id(id)
        ctx = info.context
        async with ctx.db.write() as conn:
            row = await aircraft_data.retire(
                conn, ctx.principal.org_id, aircraft_id, expected_version
            )
            if row is None:
                raise await _explain_missed_update(conn, info, aircraft_id, expected_version)
        return Aircraft.from_row(row)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def start_flight(self, info: GqlInfo, input: StartFlightInput) -> Flight:
        aircraft_id = cursors.parse_id(input.aircraft_id, "aircraftId")
        number = input.flight_number.strip().upper()
        if not FLIGHT_NUMBER.match(number):
            raise BadUserInput("flightNumber must be 2-8 characters: A-Z and 0-9")
        origin, destination = input.origin.strip().upper(), input.destination.strip().upper()
        for what, code in (("origin", origin), ("destination", destination)):
            if not ICAO.match(code):
                raise BadUserInput(f"{what} must be a 4-letter ICAO airport code")
        ctx = info.context
        async with ctx.db.write() as conn:
            row = await flight_data.start(
                conn,
                ctx.principal.org_id,
                aircraft_id=aircraft_id,
                flight_number=number,
                origin=origin,
                destination=destination,
                departed_at=cursors.utc(input.departed_at),
            )
            if row is None:
                found = await aircraft_data.get(conn, ctx.principal.org_id, aircraft_id)
                if found is None:
                    raise NotFound("Aircraft not found")
                raise BadUserInput("A retired aircraft cannot start a flight")
        return Flight.from_row(row)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def complete_flight(
        self, info: GqlInfo, id: strawberry.ID, arrived_at: dt.datetime
    ) -> Flight:
        flight_id = cursors.parse_id(id)
        arrived = cursors.utc(arrived_at)
        ctx = info.context
        async with ctx.db.write() as conn:
            row = await flight_data.complete(conn, ctx.principal.org_id, flight_id, arrived)
            if row is None:
                current = await flight_data.get(conn, ctx.principal.org_id, flight_id)
                if current is None:
                    raise NotFound("Flight not found")
                if current["status"] != "in_flight":
                    raise BadUserInput(
                        f"Only a flight in flight can be completed; this one is {current['status']}"
                    )
                raise BadUserInput("arrivedAt must be after the departure time")
        return Flight.from_row(row)

    @strawberry.mutation(permission_classes=[CanWrite])
    async def ingest_telemetry(
        self, info: GqlInfo, flight_id: strawberry.ID, points: list[TelemetryPointInput]
    ) -> IngestResult:
        fid = cursors.parse_id(flight_id, "flightId")
        ctx = info.context
        if len(points) > ctx.settings.limits.max_ingest_points:
            raise BadUserInput(
                f"At most {ctx.settings.limits.max_ingest_points} points per call;"
                " use POST /v1/flights/{flightId}/telemetry for bulk"
            )
        raw = ((i, _point_dict(p)) for i, p in enumerate(points))
        obs = ctx.obs
        out = await ingest(
            ctx.db,
            ctx.principal,
            ctx.settings,
            fid,
            raw,
            source="graphql",
            on_missing_partition=None if obs is None else obs.inc_missing_partition,
        )
        return IngestResult(
            accepted=out.accepted,
            duplicates=out.duplicates,
            rejected=[RejectedPoint(index=r.index, reason=r.reason) for r in out.rejected],
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def record_maintenance(
        self, info: GqlInfo, input: RecordMaintenanceInput
    ) -> MaintenanceEvent:
        aircraft_id = cursors.parse_id(input.aircraft_id, "aircraftId")
        if input.aircraft_hours is not None and not 0 <= input.aircraft_hours <= 1e9:
            raise BadUserInput("aircraftHours must be between 0 and 1e9")
        ctx = info.context
        async with ctx.db.write() as conn:
            row = await maintenance_data.record(
                conn,
                ctx.principal.org_id,
                aircraft_id=aircraft_id,
                component=_text(input.component, "component", 200),
                kind=input.kind.value,
                performed_at=cursors.utc(input.performed_at),
                findings=None
                if input.findings is None
                else _text(input.findings, "findings", 10000),
                aircraft_hours=input.aircraft_hours,
                recorded_by=ctx.principal.subject,
            )
            if row is None:
                raise NotFound("Aircraft not found")
        return MaintenanceEvent.from_row(row)


def _point_dict(p: TelemetryPointInput) -> dict[str, Any]:
    return {graphql_name: getattr(p, python_name) for graphql_name, python_name in POINT_FIELDS}
