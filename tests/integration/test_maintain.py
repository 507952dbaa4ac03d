"""``dbx-gateway maintain`` in a scratch database: partitions ahead, whole
expired partitions detached into dbx_archive, rows past a shorter org
retention moved and audited, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg

from gateway.admin.maintain import MAINTAIN_USER, maintain_report
from gateway.admin.migrate import migrate
from tests.integration.conftest import ScratchFactory


def month_start(d: dt.datetime, months: int) -> dt.date:
    index = d.year * 12 + d.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


async def org_with_telemetry(
    conn: asyncpg.Connection, retention_days: int, at: list[dt.datetime]
) -> uuid.UUID:
    slug = f"t-{uuid.uuid4().hex[:10]}"
    org = await conn.fetchval(
        "insert into dbx_aviation.organizations (name, slug, kind, telemetry_retention_days) "
        "values ($1, $2, 'airline', $3) returning id",
        slug,
        slug,
        retention_days,
    )
    ac = await conn.fetchval(
        "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model) "
        "values ($1, 'G-RETN', 'ATR', 'ATR 72-600') returning id",
        org,
    )
    fl = await conn.fetchval(
        "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin, "
        "destination, departed_at) values ($1, $2, 'RT1', 'EGLL', 'EGCC', $3) returning id",
        org,
        ac,
        min(at),
    )
    await conn.executemany(
        "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, aircraft_id, "
        "altitude_m) values ($1, $2, $3, $4, 3000)",
        [(fl, t, org, ac) for t in at],
    )
    return org


async def test_maintain_creates_partitions_ahead_and_archives_by_retention_idempotently(
    scratch_db: ScratchFactory,
) -> None:
    dsn = await scratch_db()
    await migrate(dsn)
    now = dt.datetime.now(dt.UTC)
    old, recent = now - dt.timedelta(days=45), now - dt.timedelta(days=1)
    conn = await asyncpg.connect(dsn)
    try:
        # two partitions older than every retention (365 days is the longest)
        await conn.execute(
            "select dbx_aviation.ensure_telemetry_partitions($1, 1)", month_start(now, -16)
        )
        long_keeper = await org_with_telemetry(conn, 365, [old, recent])
        short_keeper = await org_with_telemetry(conn, 30, [old, recent])

        report = await maintain_report(dsn, months_ahead=15)
        print(report)

        ahead = month_start(now, 15).strftime("flight_telemetry_y%Ym%m")
        assert await conn.fetchval("select to_regclass($1) is not null", f"dbx_aviation.{ahead}")
        expired = {month_start(now, m).strftime("flight_telemetry_y%Ym%m") for m in (-16, -15)}
        archived = {
            r["relname"]
            for r in await conn.fetch(
                "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'dbx_archive' and c.relkind = 'r' "
                "and relname like 'flight_telemetry_y%'"
            )
        }
        assert archived == expired
        attached = {
            r["partition_name"]
            for r in await conn.fetch(
                "select partition_name from dbx_aviation.telemetry_partitions()"
            )
        }
        assert not attached & expired

        async def hot(org: uuid.UUID) -> int:
            return int(
                await conn.fetchval(
                    "select count(*) from dbx_aviation.flight_telemetry where org_id = $1", org
                )
            )

        async def cold(org: uuid.UUID) -> int:
            return int(
                await conn.fetchval(
                    "select count(*) from dbx_archive.flight_telemetry where org_id = $1", org
                )
            )

        assert (await hot(long_keeper), await cold(long_keeper)) == (2, 0)
        assert (await hot(short_keeper), await cold(short_keeper)) == (1, 1)
        audit = await conn.fetch(
            "select org_id, user_id, table_name, old_values from dbx_audit.audit_log "
            "where operation = 'ARCHIVE'"
        )
        assert [(r["org_id"], r["user_id"], r["table_name"]) for r in audit] == [
            (short_keeper, MAINTAIN_USER, "flight_telemetry")
        ]
        assert report.rows_archived == {str(short_keeper): 1}

        again = await maintain_report(dsn, months_ahead=15)
        assert (again.partitions_created, again.partitions_archived, again.rows_archived) == (
            0,
            [],
            {},
        )
        assert (
            await conn.fetchval(
                "select count(*) from dbx_audit.audit_log where operation = 'ARCHIVE'"
            )
            == 1
        )
    finally:
        await conn.close()


TELEMETRY_VALUES = (
    "org_id, aircraft_id, altitude_m, airspeed_ms, latitude, longitude, heading_deg, "
    "vertical_speed_ms, engine_temp_c, fuel_flow_kg_h"
)


async def test_item7_retention_never_deletes_a_point_it_did_not_archive(
    scratch_db: ScratchFactory,
) -> None:
    """A point re-sent after its first copy was archived: retention deletes
    from the live table only rows whose archived copy holds the same values,
    keeps the others live, and the ARCHIVE audit row counts moved, duplicate
    and kept rows as they really are."""
    dsn = await scratch_db()
    await migrate(dsn)
    now = dt.datetime.now(dt.UTC)
    same, changed = now - dt.timedelta(days=45), now - dt.timedelta(days=44)
    conn = await asyncpg.connect(dsn)
    try:
        # a 365-day org keeps the partitions attached (none is older than every retention)
        await org_with_telemetry(conn, 365, [now - dt.timedelta(days=1)])
        org = await org_with_telemetry(conn, 30, [same, changed, now - dt.timedelta(days=1)])
        first = await maintain_report(dsn, months_ahead=1)
        assert first.rows_archived == {str(org): 2}

        # the same two keys sent again: one with the archived values, one not
        fl, ac = await conn.fetchrow(
            "select flight_id, aircraft_id from dbx_aviation.flight_telemetry where org_id = $1",
            org,
        )
        await conn.executemany(
            "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, "
            "aircraft_id, altitude_m) values ($1, $2, $3, $4, $5)",
            [(fl, same, org, ac, 3000.0), (fl, changed, org, ac, 4321.0)],
        )
        resent = {
            r["recorded_at"]: tuple(r)[1:]
            for r in await conn.fetch(
                f"select recorded_at, {TELEMETRY_VALUES} from dbx_aviation.flight_telemetry "
                "where org_id = $1 and recorded_at < $2",
                org,
                now - dt.timedelta(days=30),
            )
        }
        assert len(resent) == 2
        archived_before = await conn.fetchval(
            "select count(*) from dbx_archive.flight_telemetry where org_id = $1", org
        )

        second = await maintain_report(dsn, months_ahead=1)
        print(second)

        live_after = {
            r["recorded_at"]
            for r in await conn.fetch(
                "select recorded_at from dbx_aviation.flight_telemetry "
                "where org_id = $1 and recorded_at < $2",
                org,
                now - dt.timedelta(days=30),
            )
        }
        archive = {
            r["recorded_at"]: tuple(r)[1:]
            for r in await conn.fetch(
                f"select recorded_at, {TELEMETRY_VALUES} from dbx_archive.flight_telemetry "
                "where org_id = $1",
                org,
            )
        }
        deleted = set(resent) - live_after
        lost = {t for t in deleted if archive.get(t) != resent[t]}
        audit = await conn.fetchval(
            "select old_values from dbx_audit.audit_log where operation = 'ARCHIVE' "
            "and org_id = $1 order by id desc limit 1",
            org,
        )
        print(
            f"deleted {len(deleted)}, lost {len(lost)}, archived "
            f"{archived_before} -> {len(archive)}, audit {audit}"
        )
        assert not lost, f"{len(lost)} deleted point(s) not in the archive with their values"
        assert deleted == {same} and live_after == {changed}
        assert len(archive) == archived_before == 2
        counts = json.loads(audit)
        assert (counts["moved"], counts["duplicate_of_archived"], counts["kept_conflicting"]) == (
            len(archive) - archived_before,
            len(deleted),
            len(live_after),
        )
        assert second.rows_archived == {}
        assert second.rows_duplicate == {str(org): 1}
        assert second.rows_kept == {str(org): 1}
    finally:
        await conn.close()
