"""Query plans of the analytics SQL on a seed large enough for the planner's
choice to mean something (about a million telemetry points over four months,
``gateway.admin.seed``), in a scratch database built once for the session and
dropped afterwards. ``EXPLAIN (FORMAT JSON)`` runs as the gateway role inside
a tenant transaction, with custom plans and with forced generic plans (what a
prepared statement reused by the pool gets): time windows must prune
partitions, single-flight and single-aircraft scopes must use the primary key
and ``flight_telemetry_aircraft_idx``. Also: a statement timeout on the
analytics path surfaces as ``TIMEOUT``.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.admin.migrate import migrate
from gateway.admin.seed import SeedSize, seed
from gateway.auth import Principal
from gateway.config import Settings
from gateway.data import analytics as fleet_sql
from gateway.data import analytics_quality as quality_sql
from gateway.data import analytics_telemetry as tel
from gateway.data.analytics_telemetry import Query
from gateway.db import Database
from gateway.errors import Timeout
from tests.support.analytics_data import replica_admin_dsns, wait_for_replicas

SIZE = SeedSize(orgs=3, aircraft=8, flights=64, points=700)  # ~1.04 M points
MIN_POINTS = 1_000_000
# partition indexes inherit the parent index name pattern: <partition>_aircraft_id_recorded_at_idx
AIRCRAFT_IDX = "aircraft_id_recorded_at_idx"


def with_db(dsn: str, name: str, port: int | None = None) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if port is not None:
        netloc = f"{netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{name}"))


@dataclasses.dataclass(frozen=True)
class PlansDb:
    name: str
    owner_dsn: str
    gateway_dsn: str  # direct to the primary: PgBouncer only knows `dbx`
    replica_gateway_dsns: tuple[str, ...]
    org_id: uuid.UUID
    aircraft_id: uuid.UUID
    flight_id: uuid.UUID
    as_of: datetime


@pytest.fixture(scope="session")
async def plans_db(stack: dict[str, Any], owner_dsn: str) -> AsyncIterator[PlansDb]:
    admin = next(n["admin_dsn"] for n in stack["nodes"] if n["role"] == "primary")
    name = f"dbx_plans_{secrets.token_hex(4)}"
    sup = await asyncpg.connect(admin)
    try:
        await sup.execute(f'create database "{name}" owner dbx_owner')
        await sup.close()  # fault-injection tests may restart the primary meanwhile
        owner = with_db(owner_dsn, name)
        await migrate(owner)
        await seed(owner, SIZE)
        conn = await asyncpg.connect(owner)
        try:
            await conn.execute("analyze")
            points = await conn.fetchval("select count(*) from dbx_aviation.flight_telemetry")
            assert points >= MIN_POINTS
            # the org and the aircraft with the most points; one of its longest flights
            row = await conn.fetchrow(
                "select org_id, aircraft_id, max(recorded_at) as last from"
                " dbx_aviation.flight_telemetry group by 1, 2 order by count(*) desc limit 1"
            )
            flight = await conn.fetchval(
                "select flight_id from dbx_aviation.flight_telemetry where aircraft_id = $1"
                " group by 1 order by count(*) desc limit 1",
                row["aircraft_id"],
            )
            await wait_for_replicas(conn, replica_admin_dsns(stack))
        finally:
            await conn.close()
        gw = stack["dsns"]["gateway_primary"]
        replicas = tuple(
            with_db(gw, name, n["port"]) for n in stack["nodes"] if n["role"] == "replica"
        )
        yield PlansDb(
            name, owner, with_db(gw, name, 55432), replicas, row["org_id"],
            row["aircraft_id"], flight, row["last"],
        )  # fmt: skip
    finally:
        sup = await asyncpg.connect(admin)
        try:
            await sup.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await sup.close()


def walk(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from walk(child)


def literal(value: Any) -> str:
    """A test-side SQL literal for EXECUTE's arguments (values of known types only)."""
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(type(value))
    return repr(value)


async def explain(db: PlansDb, q: Query, *, generic: bool) -> list[dict[str, Any]]:
    """The plan the gateway role gets: custom (values known when planning) or
    generic (a prepared statement; pruning then happens at executor start-up)."""
    conn = await asyncpg.connect(db.gateway_dsn, statement_cache_size=0)
    try:
        async with conn.transaction():
            await conn.execute("select set_config('dbx.org_id', $1, true)", str(db.org_id))
            if generic:
                await conn.execute("set local plan_cache_mode = force_generic_plan")
                await conn.execute("prepare analytics_q as " + q.sql)
                args = ", ".join(literal(a) for a in q.args)
                raw = await conn.fetchval(f"explain (format json) execute analytics_q({args})")
                await conn.execute("deallocate analytics_q")
            else:
                raw = await conn.fetchval("explain (format json) " + q.sql, *q.args)
    finally:
        await conn.close()
    return list(walk(json.loads(raw)[0]["Plan"]))


def telemetry_scans(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in nodes if str(n.get("Relation Name", "")).startswith("flight_telemetry_y")]


async def partition_rows(db: PlansDb) -> dict[str, float]:
    """Each telemetry partition's estimated row count (after ANALYZE)."""
    conn = await asyncpg.connect(db.owner_dsn)
    try:
        rows = await conn.fetch(
            "select c.relname, c.reltuples from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'dbx_aviation.flight_telemetry'::regclass"
        )
    finally:
        await conn.close()
    return {r["relname"]: float(r["reltuples"]) for r in rows}


def windowed_queries(db: PlansDb) -> dict[str, Query]:
    start, end = db.as_of - timedelta(days=20), db.as_of
    fleet = tel.TelemetryScope(db.org_id, start=start, end=end)
    return {
        "stats-fleet": tel.stats_query(fleet, "ALTITUDE_M"),
        "series-fleet": tel.series_query(fleet, "AIRSPEED_MS", 3600, 4),
        "risk": fleet_sql.risk_query(db.org_id, end),
    }


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_time_windows_prune_partitions(plans_db: PlansDb, generic: bool) -> None:
    total = len(await partition_rows(plans_db))
    assert total >= 12
    for label, q in windowed_queries(plans_db).items():
        nodes = await explain(plans_db, q, generic=generic)
        scans = telemetry_scans(nodes)
        removed = sum(int(n.get("Subplans Removed", 0)) for n in nodes)
        # a 20- or 30-day window touches at most 2 monthly partitions
        assert 0 < len(scans) <= 2, (label, [s["Relation Name"] for s in scans])
        if generic:
            assert removed >= total - 2, (label, removed)


def scoped_queries(db: PlansDb) -> dict[str, tuple[Query, str]]:
    start, end = db.as_of - timedelta(days=20), db.as_of
    aircraft = tel.TelemetryScope(db.org_id, aircraft_id=db.aircraft_id, start=start, end=end)
    flight = tel.TelemetryScope(db.org_id, flight_id=db.flight_id)
    return {
        "stats-aircraft": (tel.stats_query(aircraft, "ENGINE_TEMP_C"), AIRCRAFT_IDX),
        "series-aircraft": (tel.series_query(aircraft, "ALTITUDE_M", 600, None), AIRCRAFT_IDX),
        "stats-flight": (tel.stats_query(flight, "ALTITUDE_M"), "_pkey"),
        "series-flight": (tel.series_query(flight, "ALTITUDE_M", 60, 3), "_pkey"),
        "quality-flight": (quality_sql.quality_query(db.org_id, db.flight_id), "_pkey"),
    }  # fmt: skip


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_single_flight_and_aircraft_scopes_use_indexes(
    plans_db: PlansDb, generic: bool
) -> None:
    sizes = await partition_rows(plans_db)
    for label, (q, index_suffix) in scoped_queries(plans_db).items():
        nodes = await explain(plans_db, q, generic=generic)
        # a sequential scan is fine only on an empty partition (nothing to read)
        scans = [s for s in telemetry_scans(nodes) if sizes[s["Relation Name"]] > 0]
        assert scans, label
        kinds = {s["Node Type"] for s in scans}
        assert kinds <= {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}, (label, kinds)
        indexes = {
            str(n["Index Name"])
            for n in nodes
            if str(n.get("Index Name", "")).startswith("flight_telemetry_")
        }
        assert indexes and all(i.endswith(index_suffix) for i in indexes), (label, indexes)


async def test_analytics_timeout_is_reported_as_timeout(plans_db: PlansDb) -> None:
    settings = dataclasses.replace(
        Settings.from_env(),
        primary_dsn=plans_db.gateway_dsn,
        replica_dsns=plans_db.replica_gateway_dsns,
        analytics_timeout_ms=30,
        statement_cache="on",
    )
    db = Database(settings)
    await db.start()
    try:
        sess = db.session(Principal(plans_db.org_id, "plans-test", frozenset({"analyst"})))
        scope = tel.TelemetryScope(
            plans_db.org_id, start=plans_db.as_of - timedelta(days=300), end=plans_db.as_of
        )
        with pytest.raises(Timeout):
            await sess.analytics(tel.telemetry_stats, scope, "ALTITUDE_M")
        # the same session answers small questions within the limit
        small = tel.TelemetryScope(plans_db.org_id, flight_id=plans_db.flight_id)
        assert (await sess.analytics(tel.telemetry_stats, small, "ALTITUDE_M")).count > 0
    finally:
        await db.close()


def test_window_is_recent_enough(plans_db: PlansDb) -> None:
    # guards the premise of the pruning test: the seed ends near now
    assert abs(datetime.now(UTC) - plans_db.as_of) < timedelta(days=3)
