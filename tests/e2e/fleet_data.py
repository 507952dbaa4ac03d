"""Test data written with the owner role (bypasses RLS): N aircraft with M
flights each for one org, in a few statements."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg


async def seed_fleet(
    owner_dsn: str, org_id: uuid.UUID, aircraft: int, flights_each: int = 2, prefix: str = "T"
) -> list[uuid.UUID]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        ids = [uuid.uuid4() for _ in range(aircraft)]
        await conn.executemany(
            "insert into dbx_aviation.aircraft (id, org_id, registration, manufacturer, model)"
            " values ($1, $2, $3, 'Airbus', 'A320')",
            [(a, org_id, f"{prefix}{i:05d}") for i, a in enumerate(ids)],
        )
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        await conn.executemany(
            "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin,"
            " destination, departed_at, arrived_at, status)"
            " values ($1, $2, $3, 'EDDF', 'LFPG', $4::timestamptz,"
            " $4::timestamptz + interval '2 hours', 'completed')",
            [
                (org_id, a, f"DB{j:03d}", base + dt.timedelta(days=j, minutes=i))
                for i, a in enumerate(ids)
                for j in range(flights_each)
            ],
        )
        return ids
    finally:
        await conn.close()
