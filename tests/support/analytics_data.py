"""Test data for the analytics tests: a deterministic fleet (aircraft with and
without specs, maintenance, completed and in-flight flights, telemetry with
gaps, exceedances, anomalies and implausible values) written as the owner,
the raw rows read back as the owner, and replica catch-up.

Not a test module (its fixtures are imported by them); the independent expected values live in
``analytics_expected``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db import Database
from gateway.db.database import DbSession

TELEMETRY_COLUMNS = (
    "flight_id", "recorded_at", "org_id", "aircraft_id", "altitude_m", "airspeed_ms",
    "latitude", "longitude", "heading_deg", "vertical_speed_ms", "engine_temp_c", "fuel_flow_kg_h",
)  # fmt: skip


@dataclass
class Fleet:
    """What was written for one org, and its raw rows read back as the owner."""

    org_id: uuid.UUID
    as_of: datetime
    aircraft: list[dict[str, Any]] = field(default_factory=list)
    flights: list[dict[str, Any]] = field(default_factory=list)
    maintenance: list[dict[str, Any]] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[uuid.UUID, int] = field(default_factory=dict)


async def create_org(conn: asyncpg.Connection, label: str) -> uuid.UUID:
    slug = f"t-an-{label}-{uuid.uuid4().hex[:8]}"
    value = await conn.fetchval(
        "insert into dbx_aviation.organizations (name, slug, kind) values ($1, $2, 'airline')"
        " returning id",
        f"Analytics {label}",
        slug,
    )
    assert isinstance(value, uuid.UUID)
    return value


def _point(
    rng: random.Random, phase: float, wild: bool, specs: dict[str, float]
) -> tuple[float | None, ...]:
    """One sample; ``phase`` 0..1 through the flight (climb, cruise, descent)."""
    cruise = specs.get("service_ceiling_m", 12500) * 0.8
    shape = min(1.0, phase * 5, (1 - phase) * 5)
    alt = cruise * shape + rng.gauss(0, 30)
    vs = (25 if phase < 0.2 else -20 if phase > 0.8 else 0) * rng.random() + rng.gauss(0, 1)
    speed = 60 + 120 * shape + rng.gauss(0, 4)
    temp = 550 + 250 * shape + rng.gauss(0, 15)
    fuel = 800 + 1500 * shape + rng.gauss(0, 50)
    roll = rng.random()
    if roll < 0.01:
        alt = specs.get("service_ceiling_m", 12500) + 200 + rng.random() * 500  # exceedance
    elif roll < 0.02:
        speed = 192 + rng.random() * 7  # above every limit, implausible above 190
    elif roll < 0.03:
        temp = specs.get("max_engine_temp_c", 900) + 10 + rng.random() * 50
    elif roll < 0.04:
        vs = rng.choice((-1, 1)) * (26 + rng.random() * 120)  # anomaly; >100 implausible
    if wild:
        alt, speed, temp, vs = 19_000 + rng.random() * 999, 199.0, 1_450.0, 180.0
    if rng.random() < 0.02:
        fuel = None  # type: ignore[assignment]
    return (
        max(-400.0, min(19_999.0, alt)), max(0.0, min(199.9, speed)),
        rng.uniform(40, 55), rng.uniform(-5, 15), rng.uniform(0, 359),
        max(-199.0, min(199.0, vs)), max(-99.0, min(1_499.0, temp)),
        max(0.0, fuel) if fuel else None,
    )  # fmt: skip


async def build_fleet(
    conn: asyncpg.Connection, label: str, seed: int, as_of: datetime, *, wild: bool = False
) -> Fleet:
    """About 1,500 points per aircraft; ``wild`` makes every value extreme."""
    rng = random.Random(seed)
    org = await create_org(conn, label)
    fleet = Fleet(org, as_of)
    specs_list: list[dict[str, float]] = [
        {"service_ceiling_m": 11_000, "max_speed_ms": 175, "max_engine_temp_c": 850,
         "inspection_interval_h": 1},
        {"inspection_interval_h": 400, "max_speed_ms": 190},
        {},
    ]  # fmt: skip
    made = [date(2001, 5, 17), date(2019, 1, 2), None]
    rows: list[tuple[Any, ...]] = []
    for i, specs in enumerate(specs_list if not wild else specs_list[:2]):
        reg = f"AN{label[:2].upper()}{i}{rng.randrange(100, 999)}"
        aid = await conn.fetchval(
            "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model,"
            " specs, manufactured_on) values ($1, $2, 'Test', 'T-1', $3::jsonb, $4) returning id",
            org, reg, json.dumps(specs), made[i],
        )  # fmt: skip
        fleet.aircraft.append(
            {"id": aid, "registration": reg, "specs": specs, "manufactured_on": made[i]}
        )
        if i == 0:
            kinds = [("inspection", as_of - timedelta(days=20, hours=3))]
        elif i == 1:
            kinds = [("repair", as_of - timedelta(days=10, hours=5))]
        else:
            kinds = []
        for kind, at in kinds:
            await conn.execute(
                "insert into dbx_aviation.maintenance_events (org_id, aircraft_id, component,"
                " kind, performed_at) values ($1, $2, 'engine', $3, $4)",
                org, aid, kind, at,
            )  # fmt: skip
            fleet.maintenance.append({"aircraft_id": aid, "kind": kind, "performed_at": at})
        starts = [45, 25, 12, 4] if not wild else [25, 12]
        for j, days_ago in enumerate(starts):
            dep = as_of - timedelta(days=days_ago, hours=rng.randrange(0, 20), minutes=7 * i)
            dep = dep.replace(microsecond=0)
            n = 350 + rng.randrange(0, 100)
            step = 4 + i
            in_flight = i == 2 and j == len(starts) - 1
            offsets, t = [], 0
            for _ in range(n):
                offsets.append(t)
                t += step * (8 if rng.random() < 0.02 else 1)  # occasional sampling gap
            arr = None if in_flight else dep + timedelta(seconds=t + 60)
            fid = await conn.fetchval(
                "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin,"
                " destination, departed_at, arrived_at, status) values ($1, $2, $3, 'EGLL',"
                " 'LFPG', $4, $5, $6) returning id",
                org, aid, f"AN{i}{j}{rng.randrange(10, 99)}", dep, arr,
                "in_flight" if in_flight else "completed",
            )  # fmt: skip
            fleet.flights.append(
                {"id": fid, "aircraft_id": aid, "departed_at": dep, "arrived_at": arr,
                 "status": "in_flight" if in_flight else "completed"}
            )  # fmt: skip
            for k, off in enumerate(offsets):
                rows.append(
                    (fid, dep + timedelta(seconds=off), org, aid,
                     *_point(rng, k / n, wild, specs))
                )  # fmt: skip
            if j == 1:
                dups = 5 + rng.randrange(0, 20)
                await conn.execute(
                    "insert into dbx_aviation.telemetry_ingest_batches (org_id, flight_id,"
                    " accepted, duplicates, rejected, source) values ($1, $2, $3, $4, 0, 'seed')",
                    org, fid, n, dups,
                )  # fmt: skip
                fleet.duplicates[fid] = dups
    await conn.copy_records_to_table(
        "flight_telemetry", schema_name="dbx_aviation", records=rows, columns=TELEMETRY_COLUMNS
    )
    fleet.telemetry = [dict(zip(TELEMETRY_COLUMNS, r, strict=True)) for r in rows]
    return fleet


async def read_back(conn: asyncpg.Connection, fleet: Fleet) -> None:
    """Replace the written rows by what the database holds (as the owner)."""
    tel = await conn.fetch(
        "select * from dbx_aviation.flight_telemetry where org_id = $1 order by flight_id,"
        " recorded_at",
        fleet.org_id,
    )
    fleet.telemetry = [dict(r) for r in tel]
    fleet.flights = [
        dict(r)
        for r in await conn.fetch(
            "select * from dbx_aviation.flights where org_id = $1", fleet.org_id
        )
    ]


async def wait_for_replicas(primary: asyncpg.Connection, replica_dsns: list[str]) -> None:
    """Until every reachable replica has replayed the primary's current WAL
    position. A replica that stays down (another suite's fault injection)
    is skipped: the router does not send analytics to it either."""
    lsn = await primary.fetchval("select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
    for dsn in replica_dsns:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = await asyncpg.connect(dsn, timeout=2)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(0.2)
                continue
            try:
                replayed = await conn.fetchval(
                    "select coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)"
                )
            finally:
                await conn.close()
            if replayed >= lsn:
                break
            await asyncio.sleep(0.05)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def is_close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def replica_admin_dsns(stack: dict[str, Any]) -> list[str]:
    return [n["admin_dsn"] for n in stack["nodes"] if n["role"] == "replica"]


async def two_fleets(
    owner_dsn: str, stack: dict[str, Any], names: tuple[str, str], seeds: tuple[int, int]
) -> dict[str, Fleet]:
    """Org A (ordinary) and org B (wild values in the same windows), read
    back, the daily view refreshed, and replicated."""
    as_of = now_utc()
    conn = await asyncpg.connect(owner_dsn)
    try:
        a = await build_fleet(conn, names[0], seeds[0], as_of)
        b = await build_fleet(conn, names[1], seeds[1], as_of, wild=True)
        for f in (a, b):
            await read_back(conn, f)
        await conn.execute("refresh materialized view concurrently dbx_analytics.daily_fleet_stats")
        await wait_for_replicas(conn, replica_admin_dsns(stack))
    finally:
        await conn.close()
    return {"a": a, "b": b}


@pytest.fixture(scope="module")
async def fleets(owner_dsn: str, stack: dict[str, Any]) -> dict[str, Fleet]:
    return await two_fleets(owner_dsn, stack, ("a", "b"), (1234, 999))


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Database]:
    database = Database(Settings.from_env())
    await database.start()
    try:
        yield database
    finally:
        await database.close()


def session(db: Database, fleet: Fleet) -> DbSession:
    return db.session(Principal(fleet.org_id, "analytics-test", frozenset({"analyst"})))
