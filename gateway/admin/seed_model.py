"""The demo data set's value types: what ``seed_plan.py`` produces and
``seed.py`` / ``seed_profile.py`` consume.

Must not: touch the database or draw random numbers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from gateway.admin.seed_catalog import AircraftType, Airport, OrgProfile, distance_km


@dataclass(frozen=True)
class SeedSize:
    """How much to seed: orgs, aircraft per org, flights per aircraft, points per flight."""

    orgs: int = 3
    aircraft: int = 8
    flights: int = 6
    points: int = 120

    def __post_init__(self) -> None:
        for name, value, hi in (
            ("orgs", self.orgs, 1000),
            ("aircraft", self.aircraft, 10_000),
            ("flights", self.flights, 10_000),
            ("points", self.points, 1_000_000),
        ):
            if not 0 <= value <= hi:
                raise ValueError(f"{name} must be between 0 and {hi}, got {value}")


@dataclass(frozen=True)
class Exceedance:
    kind: str  # engine_temp | overspeed
    index: int  # sample number within the flight
    value: float
    limit: float


@dataclass
class FlightPlan:
    id: uuid.UUID
    org_id: uuid.UUID
    aircraft_id: uuid.UUID
    type: AircraftType
    flight_number: str
    origin: Airport
    destination: Airport
    departed_at: datetime
    duration_s: float
    status: str
    pattern: str  # route | circuit | survey
    points: int = 0
    span_s: float = 0.0  # seconds the samples cover (in flight: up to the anchor)
    arrived_at: datetime | None = None
    exceedances: list[Exceedance] = field(default_factory=list)

    def sample_time(self, index: int) -> datetime:
        step_us = int(self.span_s * 1e6) // max(self.points, 1)
        return self.departed_at + timedelta(microseconds=index * step_us)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "source": "seed",
            "pattern": self.pattern,
            "distance_km": round(distance_km(self.origin, self.destination), 1),
            "planned_duration_s": round(self.duration_s),
            "points": self.points,
            "exceedances": [
                {
                    "kind": e.kind,
                    "index": e.index,
                    "recorded_at": self.sample_time(e.index).isoformat(),
                    "value": e.value,
                    "limit": e.limit,
                }
                for e in self.exceedances
            ],
        }
        return meta


@dataclass
class MaintenancePlan:
    id: uuid.UUID
    component: str
    kind: str
    performed_at: datetime
    findings: str
    aircraft_hours: float


@dataclass
class AircraftPlan:
    id: uuid.UUID
    type: AircraftType
    registration: str
    serial_number: str
    status: str
    manufactured_on: date
    base: Airport
    hours_before: float
    created_at: datetime
    retired_at: datetime | None = None
    flights: list[FlightPlan] = field(default_factory=list)
    maintenance: list[MaintenancePlan] = field(default_factory=list)

    @property
    def total_flight_hours(self) -> float:
        flown = sum(f.duration_s for f in self.flights if f.status == "completed")
        return round(self.hours_before + flown / 3600.0, 2)


@dataclass
class OrgPlan:
    id: uuid.UUID
    profile: OrgProfile
    created_at: datetime
    aircraft: list[AircraftPlan] = field(default_factory=list)
