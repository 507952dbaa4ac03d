"""``dbx-gateway maintain`` in a scratch database: partitions ahead, whole
expired partitions detached into dbx_archive, rows past a shorter org
retention moved and audited, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from gateway.admin.maintain import MAINTAIN_USER, maintain_report
from gateway.admin.migrate import migrate
from tests.support.orgs import ScratchFactory, org_with_telemetry


def month_start(d: dt.datetime, months: int) -> dt.date:
    index = d.year * 12 + d.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


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
