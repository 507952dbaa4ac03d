"""The benchmark's data set: one organization beyond the three demo ones,
seeded once with ``dbx-gateway seed`` and reused by later runs, plus the Q3
function (``sql/fleet_stats.sql``) and the ids the request bodies draw from.

Sizes (aircraft; flights per aircraft; telemetry points per flight):
``default`` 1000; 20; 100 = 1000 aircraft, 20k flights, ~2M points (the
issue's data set); ``small`` 100; 10; 100 = 100 aircraft, 1k flights, ~100k points.

``seed --orgs N`` skips organizations that exist, so seeding ``--orgs i+1``
loads only organization ``i`` when 0..i-1 exist. The first index >= 3 whose
organization is missing, or present with exactly the wanted size, is the
benchmark's: a data set of another size never gets mixed into it.

Must not: delete or change rows it did not create (ingest flights are its own).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from gateway.admin.seed_catalog import generated_org

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEMO_ORGS = 3


@dataclass(frozen=True)
class DatasetSize:
    name: str
    aircraft: int
    flights: int  # per aircraft
    points: int  # per flight


SIZES = {
    "default": DatasetSize("default", 1000, 20, 100),
    "small": DatasetSize("small", 100, 10, 100),
}


@dataclass
class Dataset:
    slug: str
    org_id: uuid.UUID
    aircraft: int
    flights: int
    points: int
    registrations: list[tuple[str, uuid.UUID]]  # fleet order: registration, id
    flight_ids: list[uuid.UUID]
    first_departure: datetime
    last_departure: datetime

    def describe(self) -> str:
        return (
            f"org `{self.slug}`: {self.aircraft:,} aircraft, {self.flights:,} flights,"
            f" {self.points:,} telemetry points (seeded with `dbx-gateway seed`)"
        )


def _cli(*args: str) -> str:
    exe = Path(sys.executable).with_name("dbx-gateway")
    out = subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dbx-gateway {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


async def _org_size(conn: asyncpg.Connection, slug: str) -> tuple[uuid.UUID, int, int] | None:
    row = await conn.fetchrow(
        "select o.id,"
        " (select count(*) from dbx_aviation.aircraft a where a.org_id = o.id) as aircraft,"
        " (select count(*) from dbx_aviation.flights f where f.org_id = o.id"
        "  and f.flight_number !~ '^BENCH') as flights"
        " from dbx_aviation.organizations o where o.slug = $1",
        slug,
    )
    return None if row is None else (row["id"], int(row["aircraft"]), int(row["flights"]))


async def _choose_org(owner_dsn: str, size: DatasetSize) -> tuple[int, bool]:
    """(index, present): the organization index holding this size."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        for index in range(DEMO_ORGS, 200):
            found = await _org_size(conn, generated_org(index).slug)
            if found is None:
                return index, False
            _, aircraft, flights = found
            if aircraft == size.aircraft and flights == size.aircraft * size.flights:
                return index, True
    finally:
        await conn.close()
    raise RuntimeError("no free organization index for the benchmark data set")


async def wait_for_replicas(
    primary_admin: str, replica_admins: list[str], timeout_s: float
) -> list[str]:
    """Until every replica has replayed the primary's current WAL position (DBX
    reads from replicas; a lagging one would be skipped or serve old rows).
    Returns what did not catch up in time (a replica may be down: other
    people's fault-injection tests stop nodes)."""
    conn = await asyncpg.connect(primary_admin)
    try:
        # asyncpg decodes pg_lsn as an int: compare in Python
        target = int(await conn.fetchval("select pg_current_wal_lsn()"))
    finally:
        await conn.close()
    deadline = time.monotonic() + timeout_s
    late = []
    for dsn in replica_admins:
        while True:
            try:
                rc = await asyncpg.connect(dsn, timeout=5)
                try:
                    replay = await rc.fetchval("select pg_last_wal_replay_lsn()")
                    # within 1 MiB: an idle primary's insert position runs a
                    # page ahead of the last record a replica can replay
                    done = replay is not None and target - int(replay) < 1 << 20
                finally:
                    await rc.close()
            except (OSError, asyncpg.PostgresError, TimeoutError):
                done = False
            if done:
                break
            if time.monotonic() > deadline:
                late.append(dsn.rsplit("@", 1)[-1])
                break
            await asyncio.sleep(0.5)
    return late


async def remove_bench_flights(owner_dsn: str, org_id: uuid.UUID) -> str:
    """Delete every ``BENCH`` flight (the ingest section's) of the benchmark
    organization with its points, on a fresh connection; "" or what failed."""
    try:
        owner = await asyncpg.connect(owner_dsn)
        try:
            async with owner.transaction():
                await owner.execute("select set_config('dbx.user_id', 'dbx-bench', true)")
                ids = [
                    r["id"]
                    for r in await owner.fetch(
                        "select id from dbx_aviation.flights"
                        " where org_id = $1 and flight_number ~ '^BENCH'",
                        org_id,
                    )
                ]
                await owner.execute(
                    "delete from dbx_aviation.flight_telemetry where flight_id = any($1)", ids
                )
                await owner.execute(
                    "delete from dbx_aviation.telemetry_ingest_batches where flight_id = any($1)",
                    ids,
                )
                await owner.execute("delete from dbx_aviation.flights where id = any($1)", ids)
            if ids:
                # Dead rows would slow every later scan of the telemetry (the
                # replicas most: they cannot prune or set hint bits for good)
                # until autovacuum comes by, in the middle of someone's cell.
                await owner.execute("vacuum (analyze) dbx_aviation.flight_telemetry")
        finally:
            await owner.close()
    except (OSError, asyncpg.PostgresError) as exc:
        return f"ingest flights kept (clean-up failed: {exc.__class__.__name__})"
    return ""


async def settle(owner_dsn: str) -> None:
    """``VACUUM (ANALYZE)`` the telemetry and the flights, so no cell of a run
    scans the dead rows an earlier run (or an interrupted one) left."""
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute("vacuum (analyze) dbx_aviation.flight_telemetry, dbx_aviation.flights")
    finally:
        await owner.close()


async def prepare(owner_dsn: str, size: DatasetSize, log: object = print) -> Dataset:
    """Seed when needed, (re)create the Q3 function, and read the ids."""
    say = log if callable(log) else print
    say(_cli("seed", "--if-empty"))  # the demo orgs first, so index 3+ is ours
    index, present = await _choose_org(owner_dsn, size)
    slug = generated_org(index).slug
    if not present:
        say(
            f"seeding {slug}: {size.aircraft} aircraft x {size.flights} flights"
            f" x {size.points} points (once; later runs reuse it) ..."
        )
        say(
            _cli(
                "seed",
                "--orgs",
                str(index + 1),
                "--aircraft",
                str(size.aircraft),
                "--flights",
                str(size.flights),
                "--points",
                str(size.points),
            )
        )
        say(_cli("maintain"))  # refreshes the daily-stats view the analytics fields read
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute((HERE / "sql" / "fleet_stats.sql").read_text())
        org = await _org_size(conn, slug)
        if org is not None:  # an interrupted run may have left ingest flights
            await remove_bench_flights(owner_dsn, org[0])
        found = await _org_size(conn, slug)
        if found is None:
            raise RuntimeError(f"organization {slug} missing after seeding")
        org_id, aircraft, flights = found
        regs = await conn.fetch(
            "select registration, id from dbx_aviation.aircraft where org_id = $1"
            " order by registration, id",
            org_id,
        )
        frows = await conn.fetch(
            "select id, departed_at from dbx_aviation.flights where org_id = $1"
            " and flight_number !~ '^BENCH' order by id",
            org_id,
        )
        points = await conn.fetchval(
            "select count(*) from dbx_aviation.flight_telemetry t where t.org_id = $1",
            org_id,
        )
    finally:
        await conn.close()
    departures = [r["departed_at"] for r in frows]
    return Dataset(
        slug=slug,
        org_id=org_id,
        aircraft=aircraft,
        flights=flights,
        points=int(points),
        registrations=[(r["registration"], r["id"]) for r in regs],
        flight_ids=[r["id"] for r in frows],
        first_departure=min(departures),
        last_departure=max(departures),
    )


def stack_status() -> dict[str, object]:
    out = subprocess.run(
        [str(REPO / "deploy" / "local" / "stack"), "status", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, object] = json.loads(out.stdout)
    return data
