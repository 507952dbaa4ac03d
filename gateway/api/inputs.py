"""GraphQL input types: filters and mutation inputs.

Must not: write SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

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


_POINT_DEFINITION = get_object_definition(TelemetryPointInput, strict=True)
# (GraphQL name, Python attribute) of every field, in schema order
POINT_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (NameConverter().from_field(f), f.python_name) for f in _POINT_DEFINITION.fields
)


def _point_from_input(
    cls: type[TelemetryPointInput], value: Mapping[str, Any], ctx: object
) -> TelemetryPointInput:
    """Builds a point from graphql-core's coerced input value: every field
    is a built-in scalar or ``DateTime``, already parsed and checked, so
    nothing is left to convert. Strawberry's generic conversion resolves
    each field's annotation again for every point, some 60 µs a point,
    which made ``ingestTelemetry`` spend most of its time there."""
    point = cls.__new__(cls)
    for graphql_name, python_name in POINT_FIELDS:
        setattr(point, python_name, value.get(graphql_name))
    return point


# Strawberry's hook for types that build their own value from an input value
_POINT_DEFINITION.from_input = _point_from_input


@strawberry.input
class RecordMaintenanceInput:
    aircraft_id: strawberry.ID
    component: str
    kind: MaintenanceKind
    performed_at: dt.datetime
    findings: str | None = None
    aircraft_hours: float | None = None
