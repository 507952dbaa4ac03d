"""``dbx-gateway seed``: load the deterministic demo data set
(``seed_plan.py``, ``seed_profile.py``) as the owner role.

One transaction per organization; an organization that already exists (same
id or slug) is skipped, so seeding again never duplicates. Flights and
telemetry go in with binary ``COPY`` (asyncpg ``copy_records_to_table``),
streamed from generators, so memory stays flat at any size. ``COPY FROM`` is
refused for a role subject to row-level security: when the owner role lacks
BYPASSRLS the rows are copied into a temporary staging table and moved with
``INSERT ... SELECT`` (what ARCHITECTURE.md prescribes for the gateway role).

Must not: run as the gateway role, or delete anything.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.admin.seed_catalog import OrgProfile
from gateway.admin.seed_model import AircraftPlan, OrgPlan, SeedSize
from gateway.admin.seed_plan import WINDOW, org_id, org_profiles, plan_org
from gateway.admin.seed_profile import TELEMETRY_COLUMNS, telemetry_rows

__all__ = ["SeedSize", "SeedReport", "seed", "default_anchor"]

SEED_USER = "dbx-seed"
FLIGHT_COLUMNS = (
    "id",
    "org_id",
    "aircraft_id",
    "flight_number",
    "origin",
    "destination",
    "departed_at",
    "arrived_at",
    "status",
    "metadata",
    "created_at",
    "updated_at",
)
# Staging tables live in pg_temp and vanish with the session; created once.
STAGING_SQL = """
create temporary table if not exists seed_stage_flights
    (like dbx_aviation.flights including defaults);
create temporary table if not exists seed_stage_telemetry (like dbx_aviation.flight_telemetry);
"""


@dataclass
class SeedReport:
    orgs: int = 0
    skipped_orgs: int = 0
    aircraft: int = 0
    flights: int = 0
    maintenance_events: int = 0
    points: int = 0
    seconds: float = 0.0
    copy_mode: str = "direct"
    skipped_reason: str | None = None

    def __str__(self) -> str:
        if self.skipped_reason:
            return f"seed: nothing to do ({self.skipped_reason})"
        rate = self.points / self.seconds if self.seconds > 0 else 0.0
        return (
            f"seed: {self.orgs} orgs loaded ({self.skipped_orgs} already present, skipped), "
            f"{self.aircraft} aircraft, {self.flights} flights, "
            f"{self.maintenance_events} maintenance events, {self.points:,} telemetry points "
            f"in {self.seconds:.2f} s ({rate:,.0f} points/s, {self.copy_mode} COPY)"
        )


def default_anchor() -> datetime:
    """'Now' for the data set, to the hour: the same arguments within the same
    hour give identical rows; pass ``anchor`` to pin it."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


async def seed(
    owner_dsn: str, size: SeedSize, *, if_empty: bool = False, anchor: datetime | None = None
) -> str:
    """Load the demo data set; returns the printed summary."""
    return str(await seed_report(owner_dsn, size, if_empty=if_empty, anchor=anchor))


async def seed_report(
    owner_dsn: str,
    size: SeedSize,
    *,
    if_empty: bool = False,
    anchor: datetime | None = None,
    copy_mode: str = "auto",
    workers: int = 2,
) -> SeedReport:
    """``copy_mode``: ``auto`` (direct COPY when the role bypasses RLS, else
    staged), or force ``direct`` / ``staged`` (tests check both give the same rows)."""
    if copy_mode not in {"auto", "direct", "staged"}:
        raise ValueError(f"copy_mode must be auto, direct or staged, got {copy_mode!r}")
    anchor = anchor or default_anchor()
    profiles = org_profiles(size.orgs)
    report = SeedReport()
    t0 = time.perf_counter()
    conn = await asyncpg.connect(owner_dsn)
    try:
        existing = await conn.fetch(
            "select id, slug from dbx_aviation.organizations where id = any($1) or slug = any($2)",
            [org_id(p.slug) for p in profiles],
            [p.slug for p in profiles],
        )
        present = {r["slug"] for r in existing} | {str(r["id"]) for r in existing}
        if if_empty and existing:
            report.skipped_reason = f"{len(existing)} demo organizations already exist"
            return report
        bypass = bool(
            await conn.fetchval(
                "select rolbypassrls or rolsuper from pg_roles where rolname = current_user"
            )
        )
        direct = copy_mode == "direct" or (copy_mode == "auto" and bypass)
        report.copy_mode = "direct" if direct else "staged"
        first_month = (anchor - WINDOW).date().replace(day=1)
        months = (anchor.year - first_month.year) * 12 + anchor.month - first_month.month
        await conn.execute(
            "select dbx_aviation.ensure_telemetry_partitions($1, $2)", first_month, months
        )
    finally:
        await conn.close()
    todo: asyncio.Queue[OrgProfile] = asyncio.Queue()
    for profile in profiles:
        if profile.slug in present or str(org_id(profile.slug)) in present:
            report.skipped_orgs += 1
        else:
            todo.put_nowait(profile)

    async def worker() -> None:
        # its own connection: each organization is one transaction
        wconn = await asyncpg.connect(owner_dsn)
        try:
            if not direct:
                await wconn.execute(STAGING_SQL)
            while not todo.empty():
                org = plan_org(todo.get_nowait(), size, anchor)
                async with wconn.transaction():
                    await wconn.execute("select set_config('dbx.user_id', $1, true)", SEED_USER)
                    await _load_org(wconn, org, anchor, report, direct=direct)
                report.orgs += 1
        finally:
            await wconn.close()

    # Two loaders overlap generating one organization's samples (Python) with
    # the server storing another's; more only contend for the same cores.
    await asyncio.gather(*(worker() for _ in range(min(workers, todo.qsize()))))
    report.seconds = time.perf_counter() - t0
    return report


async def _load_org(
    conn: asyncpg.Connection, org: OrgPlan, anchor: datetime, report: SeedReport, *, direct: bool
) -> None:
    p = org.profile
    await conn.execute(
        "insert into dbx_aviation.organizations "
        "(id, name, slug, kind, telemetry_retention_days, created_at) "
        "values ($1, $2, $3, $4, $5, $6)",
        org.id,
        p.name,
        p.slug,
        p.kind,
        p.retention_days,
        org.created_at,
    )
    await conn.executemany(
        "insert into dbx_aviation.aircraft (id, org_id, registration, manufacturer, model, "
        "serial_number, status, specs, manufactured_on, total_flight_hours, created_at, "
        "updated_at, retired_at) values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, "
        "$12, $13)",
        [
            (
                a.id,
                org.id,
                a.registration,
                a.type.manufacturer,
                a.type.model,
                a.serial_number,
                a.status,
                json.dumps(a.type.specs()),
                a.manufactured_on,
                a.total_flight_hours,
                a.created_at,
                _updated_at(a, anchor),
                a.retired_at,
            )
            for a in org.aircraft
        ],
    )
    report.aircraft += len(org.aircraft)

    flights = [f for a in org.aircraft for f in a.flights]
    await _copy(
        conn,
        "flights",
        "seed_stage_flights",
        FLIGHT_COLUMNS,
        (
            (
                f.id,
                f.org_id,
                f.aircraft_id,
                f.flight_number,
                f.origin.icao,
                f.destination.icao,
                f.departed_at,
                f.arrived_at,
                f.status,
                json.dumps(f.metadata()),
                f.departed_at - timedelta(days=7),
                f.arrived_at or f.departed_at - timedelta(days=7),
            )
            for f in flights
        ),
        direct=direct,
    )
    report.flights += len(flights)

    events = [
        (
            m.id,
            org.id,
            a.id,
            m.component,
            m.kind,
            m.performed_at,
            m.findings,
            m.aircraft_hours,
            SEED_USER,
            m.performed_at,
        )
        for a in org.aircraft
        for m in a.maintenance
    ]
    await conn.executemany(
        "insert into dbx_aviation.maintenance_events (id, org_id, aircraft_id, component, kind, "
        "performed_at, findings, aircraft_hours, recorded_by, created_at) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        events,
    )
    report.maintenance_events += len(events)

    # one COPY per aircraft keeps each statement (and, when staged, the staging
    # table) small while the whole organization stays one transaction
    for a in org.aircraft:
        rows = _aircraft_telemetry(a)
        # not `report.points += await ...`: that reads the total before the
        # await and would lose the other loader's points
        copied = await _copy(
            conn, "flight_telemetry", "seed_stage_telemetry", TELEMETRY_COLUMNS, rows, direct=direct
        )
        report.points += copied
    await conn.executemany(
        "insert into dbx_aviation.telemetry_ingest_batches "
        "(org_id, flight_id, accepted, duplicates, rejected, source, user_id, created_at) "
        "values ($1, $2, $3, 0, 0, 'seed', $4, $5)",
        [
            (org.id, f.id, f.points, SEED_USER, f.arrived_at or anchor)
            for f in flights
            if f.points > 0
        ],
    )


def _aircraft_telemetry(a: AircraftPlan) -> Iterator[tuple[Any, ...]]:
    for f in a.flights:
        yield from telemetry_rows(f)


def _updated_at(a: AircraftPlan, anchor: datetime) -> datetime:
    done = [f.arrived_at for f in a.flights if f.arrived_at is not None]
    return max(
        [a.created_at, *done, *(m.performed_at for m in a.maintenance if m.performed_at <= anchor)]
    )


async def _copy(
    conn: asyncpg.Connection,
    table: str,
    staging: str,
    columns: tuple[str, ...],
    records: Iterable[tuple[Any, ...]],
    *,
    direct: bool,
) -> int:
    """COPY records into dbx_aviation.<table> (through <staging> when the role
    is under RLS); returns the row count."""
    counted = _Counted(records)
    if direct:
        await conn.copy_records_to_table(
            table, schema_name="dbx_aviation", records=counted, columns=list(columns)
        )
        return counted.n
    await conn.copy_records_to_table(staging, records=counted, columns=list(columns))
    if table == "flights":
        await conn.execute(
            "insert into dbx_aviation.flights (id, org_id, aircraft_id, flight_number, origin, "
            "destination, departed_at, arrived_at, status, metadata, created_at, updated_at) "
            "select id, org_id, aircraft_id, flight_number, origin, destination, departed_at, "
            "arrived_at, status, metadata, created_at, updated_at from seed_stage_flights"
        )
        await conn.execute("truncate seed_stage_flights")
    else:
        await conn.execute(
            "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, "
            "aircraft_id, altitude_m, airspeed_ms, latitude, longitude, heading_deg, "
            "vertical_speed_ms, engine_temp_c, fuel_flow_kg_h) "
            "select flight_id, recorded_at, org_id, aircraft_id, altitude_m, airspeed_ms, "
            "latitude, longitude, heading_deg, vertical_speed_ms, engine_temp_c, fuel_flow_kg_h "
            "from seed_stage_telemetry"
        )
        await conn.execute("truncate seed_stage_telemetry")
    return counted.n


class _Counted:
    """An iterable that counts what COPY consumed."""

    def __init__(self, records: Iterable[tuple[Any, ...]]) -> None:
        self._records = records
        self.n = 0

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for r in self._records:
            self.n += 1
            yield r
