"""``dbx-gateway maintain``: telemetry partitions ahead, retention, and the
refresh of ``dbx_analytics`` materialized views. Idempotent; safe to run from
cron.

The work is done by SQL functions of migration 0006 (names are built there
with ``format('%I')``); this module calls them in order and reports:
1. partitions from the earliest month with data (or the current month) to
   ``months_ahead`` months ahead;
2. partitions entirely older than every organization's retention are detached
   and moved to ``dbx_archive``;
3. rows older than an organization's shorter retention move to
   ``dbx_archive.flight_telemetry`` (migration 0012): a row is deleted from
   the live table only if the archive now holds it with the same values; a
   re-sent point whose archived copy differs stays live and is reported.
   One ARCHIVE audit row per organization with expired rows, counting moved,
   duplicate and kept rows;
4. every materialized view in ``dbx_analytics`` is refreshed (concurrently
   where it can be).

Must not: run as the gateway role, or drop anything.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import asyncpg

MAINTAIN_USER = "dbx-maintain"


@dataclass
class MaintainReport:
    from_month: str = ""
    partitions_created: int = 0
    partitions_archived: list[str] = field(default_factory=list)
    rows_archived: dict[str, int] = field(default_factory=dict)  # org id -> rows
    # expired rows already archived with the same values: deleted, not moved
    rows_duplicate: dict[str, int] = field(default_factory=dict)
    # expired rows archived before with other values: kept live
    rows_kept: dict[str, int] = field(default_factory=dict)
    views_refreshed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"maintain: telemetry partitions from {self.from_month}: "
            f"{self.partitions_created} created",
            "maintain: detached to dbx_archive: "
            + (", ".join(self.partitions_archived) or "no expired partition"),
            "maintain: rows archived: "
            + (", ".join(f"{n} of org {o}" for o, n in self.rows_archived.items()) or "none"),
            "maintain: expired rows already archived with the same values, deleted: "
            + (", ".join(f"{n} of org {o}" for o, n in self.rows_duplicate.items()) or "none"),
            "maintain: expired rows archived before with other values, kept live: "
            + (", ".join(f"{n} of org {o}" for o, n in self.rows_kept.items()) or "none"),
            "maintain: materialized views refreshed: "
            + (", ".join(self.views_refreshed) or "none in dbx_analytics"),
            f"maintain: done in {self.seconds:.2f} s",
        ]
        return "\n".join(lines)


# Partition DDL locks flight_telemetry against every reader and writer, and
# while it waits for a lock every telemetry statement queues behind it: it
# waits at most PARTITION_LOCK_TIMEOUT, then backs off and tries again.
PARTITION_LOCK_TIMEOUT = "200ms"
PARTITION_ATTEMPTS = 10
PARTITION_BACKOFF_S = 0.5


async def _ensure_partitions(conn: asyncpg.Connection, months_ahead: int) -> asyncpg.Record | None:
    for attempt in range(1, PARTITION_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await conn.execute(f"set local lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
                return await conn.fetchrow(
                    "select from_month, created "
                    "from dbx_aviation.ensure_telemetry_partitions_ahead($1)",
                    months_ahead,
                )
        except asyncpg.exceptions.LockNotAvailableError:
            if attempt == PARTITION_ATTEMPTS:
                raise
            await asyncio.sleep(PARTITION_BACKOFF_S * attempt)
    return None


async def maintain(owner_dsn: str, months_ahead: int = 3) -> str:
    return str(await maintain_report(owner_dsn, months_ahead=months_ahead))


async def maintain_report(owner_dsn: str, months_ahead: int = 3) -> MaintainReport:
    if not 0 <= months_ahead <= 120:
        raise ValueError(f"months_ahead must be between 0 and 120, got {months_ahead}")
    report = MaintainReport()
    t0 = time.perf_counter()
    conn = await asyncpg.connect(owner_dsn)
    try:
        # each step in its own transaction: a failed refresh must not undo
        # the partitions made for tomorrow's data
        row = await _ensure_partitions(conn, months_ahead)
        if row is not None:
            report.from_month = row["from_month"].isoformat()
            report.partitions_created = int(row["created"])
        async with conn.transaction():
            await conn.execute("select set_config('dbx.user_id', $1, true)", MAINTAIN_USER)
            for r in await conn.fetch(
                "select partition_name, archived_as "
                "from dbx_aviation.archive_expired_telemetry_partitions()"
            ):
                report.partitions_archived.append(f"{r['partition_name']} -> {r['archived_as']}")
        async with conn.transaction():
            await conn.execute("select set_config('dbx.user_id', $1, true)", MAINTAIN_USER)
            for r in await conn.fetch(
                "select org_id, moved, duplicate_of_archived, kept_conflicting "
                "from dbx_aviation.archive_org_telemetry()"
            ):
                org = str(r["org_id"])
                for counts, n in (
                    (report.rows_archived, r["moved"]),
                    (report.rows_duplicate, r["duplicate_of_archived"]),
                    (report.rows_kept, r["kept_conflicting"]),
                ):
                    if n:
                        counts[org] = int(n)
        for r in await conn.fetch(
            "select view_name, mode from dbx_aviation.refresh_analytics_views()"
        ):
            report.views_refreshed.append(f"{r['view_name']} ({r['mode']})")
    finally:
        await conn.close()
    report.seconds = time.perf_counter() - t0
    return report
