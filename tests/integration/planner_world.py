"""Data for the planner differential test, written with the owner role
(bypasses RLS): one org whose rows cover every shape the planned path
must reproduce (null serial numbers, nested specs with floats, fractional
hours, retired aircraft, an aircraft without flights, microsecond and
whole-second timestamps, equal departure times, open flights), and a
second org whose ids must stay invisible."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

import asyncpg

BASE = dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)


@dataclass
class World:
    org: uuid.UUID
    other_org: uuid.UUID
    aircraft: list[uuid.UUID] = field(default_factory=list)
    registrations: list[str] = field(default_factory=list)
    flights: list[uuid.UUID] = field(default_factory=list)
    departures: list[dt.datetime] = field(default_factory=list)
    other_aircraft: list[uuid.UUID] = field(default_factory=list)
    other_flights: list[uuid.UUID] = field(default_factory=list)
    idle_aircraft: uuid.UUID | None = None


async def build_world(owner_dsn: str, org: uuid.UUID, other_org: uuid.UUID) -> World:
    w = World(org, other_org)
    conn = await asyncpg.connect(owner_dsn)
    try:
        tag = uuid.uuid4().hex[:3].upper()
        specs = [
            {"seats": 180, "mtowKg": 78000.5, "engines": ["CFM56-5B", "CFM56-5B"]},
            {},
            {"cabin": {"business": 12, "economy": None}, "ratio": 0.1, "note": "Ünïcode"},
        ]
        statuses = ["active", "maintenance", "retired", "active", "active", "maintenance", "active"]
        for i, status in enumerate(statuses):
            a = uuid.uuid4()
            reg = f"D-{tag}{i}"
            await conn.execute(
                "insert into dbx_aviation.aircraft (id, org_id, registration, manufacturer, model,"
                " serial_number, status, specs, total_flight_hours, retired_at, created_at)"
                " values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)",
                a,
                org,
                reg,
                "Airbus" if i % 2 == 0 else "Boeing",
                "A320neo" if i % 2 == 0 else "737-800",
                None if i % 3 == 0 else f"MSN{1000 + i}",
                status,
                json.dumps(specs[i % len(specs)]),
                [1234.56, 0, 0.1, 99999.99, 12.5, 7, 3.33][i],
                BASE + dt.timedelta(days=30, microseconds=250) if status == "retired" else None,
                BASE - dt.timedelta(days=400 - i, microseconds=i * 1001),
            )
            w.aircraft.append(a)
            w.registrations.append(reg)
        w.idle_aircraft = w.aircraft[2]
        plan = {0: 12, 1: 3, 3: 2, 4: 1, 5: 2, 6: 4}  # aircraft index -> flights
        for ai, n in plan.items():
            for j in range(n):
                f = uuid.uuid4()
                departed = BASE + dt.timedelta(days=j, hours=ai)
                if j % 3 == 1:
                    departed += dt.timedelta(microseconds=123456)
                if j % 5 == 4:
                    departed += dt.timedelta(microseconds=500)
                if ai == 6 and j in (1, 2):
                    departed = BASE + dt.timedelta(days=9)  # equal keys: ordered by id
                open_flight = j == n - 1 and ai in (0, 5)
                await conn.execute(
                    "insert into dbx_aviation.flights (id, org_id, aircraft_id, flight_number,"
                    " origin, destination, departed_at, arrived_at, status)"
                    " values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    f,
                    org,
                    w.aircraft[ai],
                    f"DX{ai}{j:02d}",
                    ["EDDF", "LFPG", "EGLL"][j % 3],
                    ["LFPG", "EGLL", "EDDF"][j % 3],
                    departed,
                    None if open_flight else departed + dt.timedelta(hours=2, seconds=j),
                    "in_flight" if open_flight else ["completed", "diverted"][j % 2],
                )
                w.flights.append(f)
                w.departures.append(departed)
        for i in range(2):
            a = uuid.uuid4()
            await conn.execute(
                "insert into dbx_aviation.aircraft (id, org_id, registration, manufacturer, model)"
                " values ($1, $2, $3, 'Airbus', 'A321')",
                a,
                other_org,
                f"D-{tag}{i}",  # the same registrations as the first org's
            )
            f = await conn.fetchval(
                "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin,"
                " destination, departed_at, status) values ($1, $2, 'OT1', 'EDDF', 'LFPG', $3,"
                " 'scheduled') returning id",
                other_org,
                a,
                BASE + dt.timedelta(days=3),
            )
            w.other_aircraft.append(a)
            w.other_flights.append(f)
        return w
    finally:
        await conn.close()
