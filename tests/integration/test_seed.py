"""``dbx-gateway seed`` in scratch databases: the same arguments give the same
rows (ids included), direct and staged COPY agree, a second run duplicates
nothing, and the demo data is what the analytics tests rely on."""

from __future__ import annotations

import datetime as dt
import json
import time

import asyncpg

from gateway.admin.migrate import migrate
from gateway.admin.seed import SeedSize, seed, seed_report
from tests.support.orgs import ScratchFactory

ANCHOR = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
CONTENT_HASH_SQL = """
select md5(concat_ws('/',
    (select string_agg(t::text, '|' order by t::text) from dbx_aviation.organizations t),
    (select string_agg(t::text, '|' order by t::text) from dbx_aviation.aircraft t),
    (select string_agg(t::text, '|' order by t::text) from dbx_aviation.flights t),
    (select string_agg(t::text, '|' order by t::text) from dbx_aviation.maintenance_events t),
    (select string_agg(t::text, '|' order by t::text) from dbx_aviation.flight_telemetry t),
    (select string_agg(format('%s %s %s %s %s', org_id, flight_id, accepted, source, created_at),
                       '|' order by flight_id) from dbx_aviation.telemetry_ingest_batches)))
"""


async def content_hash(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(CONTENT_HASH_SQL)
        assert isinstance(value, str)
        return value
    finally:
        await conn.close()


async def seeded_scratch(scratch_db: ScratchFactory, copy_mode: str = "auto") -> tuple[str, float]:
    dsn = await scratch_db()
    await migrate(dsn)
    t0 = time.perf_counter()
    await seed_report(dsn, SeedSize(), anchor=ANCHOR, copy_mode=copy_mode)
    return dsn, time.perf_counter() - t0


async def test_seed_is_deterministic_across_databases_and_copy_modes(
    scratch_db: ScratchFactory,
) -> None:
    first, seconds = await seeded_scratch(scratch_db, "auto")
    second, _ = await seeded_scratch(scratch_db, "staged")
    print(f"default seed loaded in {seconds:.2f} s")
    assert await content_hash(first) == await content_hash(second)


async def test_seed_again_skips_existing_orgs_and_duplicates_nothing(
    scratch_db: ScratchFactory,
) -> None:
    dsn, _ = await seeded_scratch(scratch_db)
    before = await content_hash(dsn)
    again = await seed_report(dsn, SeedSize(), anchor=ANCHOR)
    assert (again.orgs, again.skipped_orgs, again.points) == (0, 3, 0)
    assert "nothing to do" in await seed(dsn, SeedSize(), if_empty=True, anchor=ANCHOR)
    assert await content_hash(dsn) == before


async def test_default_seed_holds_the_demo_fleet_with_consistent_flights_and_telemetry(
    scratch_db: ScratchFactory,
) -> None:
    dsn, _ = await seeded_scratch(scratch_db)
    conn = await asyncpg.connect(dsn)
    try:
        orgs = await conn.fetch("select slug, name, kind from dbx_aviation.organizations")
        assert {(r["slug"], r["name"], r["kind"]) for r in orgs} == {
            ("skyline-airways", "Skyline Airways", "airline"),
            ("blue-horizon-flight-school", "Blue Horizon Flight School", "flight_school"),
            ("aerodrone-ops", "AeroDrone Ops", "drone_operator"),
        }
        per_org = await conn.fetch(
            "select org_id, count(*) filter (where status = 'maintenance') as m, "
            "count(*) filter (where status = 'retired') as r, count(*) as n "
            "from dbx_aviation.aircraft group by org_id"
        )
        assert all(r["n"] == 8 and r["m"] >= 1 and r["r"] == 1 for r in per_org)
        assert (
            await conn.fetchval(
                "select count(*) from dbx_aviation.aircraft where specs ?& "
                "array['engine_type', 'engines', 'mtow_kg', 'seats', 'service_ceiling_m', "
                "'cruise_speed_ms', 'max_speed_ms', 'inspection_interval_h']"
            )
            == 24
        )
        statuses = {
            r["status"]
            for r in await conn.fetch("select distinct status from dbx_aviation.flights")
        }
        assert {"completed", "in_flight", "scheduled"} <= statuses
        # flight hours include every completed flight
        assert (
            await conn.fetchval(
                "select count(*) from dbx_aviation.aircraft a where a.total_flight_hours < "
                "(select coalesce(sum(extract(epoch from f.arrived_at - f.departed_at)) / 3600, 0) "
                " from dbx_aviation.flights f"
                " where f.aircraft_id = a.id and f.status = 'completed')"
            )
            == 0
        )
        # one ingest batch per flight with telemetry, matching its points
        assert (
            await conn.fetchval(
                "select count(*) from dbx_aviation.telemetry_ingest_batches b where b.accepted <> "
                "(select count(*) from dbx_aviation.flight_telemetry t"
                " where t.flight_id = b.flight_id)"
            )
            == 0
        )
        assert await conn.fetchval("select count(*) from dbx_aviation.maintenance_events") > 24
        # every exceedance listed in a flight's metadata is in its telemetry
        listed = await conn.fetch(
            "select f.id, e from dbx_aviation.flights f, "
            "jsonb_array_elements(f.metadata -> 'exceedances') e"
        )
        assert listed, "the default seed has no exceedance"
        kinds = set()
        for r in listed:
            e = json.loads(r["e"])
            kinds.add(e["kind"])
            column = {"engine_temp": "engine_temp_c", "overspeed": "airspeed_ms"}[e["kind"]]
            row = await conn.fetchrow(
                "select engine_temp_c, airspeed_ms from dbx_aviation.flight_telemetry "
                "where flight_id = $1 and recorded_at = $2::text::timestamptz",
                r["id"],
                e["recorded_at"],
            )
            assert row is not None and row[column] == e["value"] > e["limit"]
        assert "engine_temp" in kinds
        # no sample outside the listed exceedances exceeds its type's limits
        assert (
            await conn.fetchval(
                """
            select count(*) from dbx_aviation.flight_telemetry t
            join dbx_aviation.aircraft a on a.id = t.aircraft_id
            join dbx_aviation.flights f on f.id = t.flight_id
            where (t.engine_temp_c > (a.specs ->> 'max_engine_temp_c')::float8
                   or t.airspeed_ms > (a.specs ->> 'max_speed_ms')::float8
                   or t.altitude_m > (a.specs ->> 'service_ceiling_m')::float8)
              and not exists (select 1 from jsonb_array_elements(f.metadata -> 'exceedances') e
                              where (e ->> 'recorded_at')::timestamptz = t.recorded_at)
            """
            )
            == 0
        )
    finally:
        await conn.close()
