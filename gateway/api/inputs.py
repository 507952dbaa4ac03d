"""GraphQL input types: filters and mutation inputs.

Must not: write SQL.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.scalars import JSON

from gateway.api.types import AircraftStatus, FlightStatus, MaintenanceKind


@strawberry.input(description="Fleet filter; all given conditions must hold.")
class AircraftFilter:
    status: AircraftStatus | None = None
    manufacturer: str | None = None
    registration_prefix: str | None = None


@strawberry.input(description="Flight filter; `departedFrom` inclusive, `departedTo` exclusive.")
class FlightFilter:
    aircraft_id: strawberry.ID | None = None
    status: FlightStatus | None = None
    origin: str | None = None
    destination: str | None = None
    departed_from: dt.datetime | None = None
    departed_to: dt.datetime | None = None


@strawberry.input
class CreateAircraftInput:
    registration: str
    manufacturer: str
    model: str
    serial_number: str | None = None
    specs: JSON | None = None


@strawberry.input(description="Only the fields given are changed.")
class UpdateAircraftInput:
    manufacturer: str | None = strawberry.UNSET
    model: str | None = strawberry.UNSET
    status: AircraftStatus | None = strawberry.UNSET
    specs: JSON | None = strawberry.UNSET


@strawberry.input
class StartFlightInput:
    aircraft_id: strawberry.ID
    flight_number: str
    origin: str
    destination: str
    departed_at: dt.datetime


@strawberry.input
class TelemetryPointInput:
    recorded_at: dt.datetime
    altitude_m: float | None = None
    airspeed_ms: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    heading_deg: float | None = None
    vertical_speed_ms: float | None = None
    engine_temp_c: float | None = None
    fuel_flow_kg_h: float | None = None


@strawberry.input
class RecordMaintenanceInput:
    aircraft_id: strawberry.ID
    component: str
    kind: MaintenanceKind
    performed_at: dt.datetime
    findings: str | None = None
    aircraft_hours: float | None = None
