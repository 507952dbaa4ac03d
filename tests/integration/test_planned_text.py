"""Planned reads write some text columns into JSON without escaping them
(``gateway.data.planned.string_text``): that is only sound while the tables'
check constraints keep those columns to ``[A-Z0-9-]``. This fails the
moment a migration loosens one of them, or a field starts being written
unescaped without being listed here."""

from __future__ import annotations

import asyncpg

from gateway.data import planned

# (table, column, the check's pattern) behind each unescaped field
GUARDED = [
    ("aircraft", "registration", "^[A-Z0-9][A-Z0-9-]{1,9}$"),
    ("flights", "flight_number", "^[A-Z0-9]{2,8}$"),
    ("flights", "origin", "^[A-Z]{4}$"),
    ("flights", "destination", "^[A-Z]{4}$"),
]


async def test_unescaped_columns_are_held_to_safe_characters(owner_conn: asyncpg.Connection):
    for table, column, pattern in GUARDED:
        checks = await owner_conn.fetch(
            "select pg_get_constraintdef(c.oid) as def from pg_constraint c"
            " join pg_class t on t.oid = c.conrelid join pg_namespace n on n.oid = t.relnamespace"
            " where n.nspname = 'dbx_aviation' and t.relname = $1 and c.contype = 'c'",
            table,
        )
        defs = [r["def"] for r in checks]
        assert any(f"({column} ~ '{pattern}'::text)" in d for d in defs), (table, column, defs)


async def test_guarded_fields_are_the_quoted_ones() -> None:
    quoted = {
        ("aircraft", f) for f, e in planned.AIRCRAFT_FIELDS.items() if e.startswith("coalesce('\"'")
    } | {("flights", f) for f, e in planned.FLIGHT_FIELDS.items() if e.startswith("coalesce('\"'")}
    text_columns = {
        ("aircraft", "registration"),
        ("flights", "flightNumber"),
        ("flights", "origin"),
        ("flights", "destination"),
    }
    # every free-text column that is written unescaped is one of the guarded ones
    others = {("aircraft", "id"), ("aircraft", "status"), ("aircraft", "createdAt")}
    others |= {("aircraft", "updatedAt"), ("aircraft", "retiredAt"), ("flights", "id")}
    others |= {("flights", "status"), ("flights", "departedAt"), ("flights", "arrivedAt")}
    assert quoted == text_columns | others
    # analytics objects: dates, times and ids, and the guarded registration
    quoted_analytics = {
        (kind, f)
        for kind, fields in planned.ANALYTICS_FIELDS.items()
        for f, e in fields.items()
        if e.startswith("coalesce('\"'")
    }
    assert quoted_analytics == {
        ("fleetDailyStats", "day"),
        ("fleetDailyStats", "refreshedAt"),
        ("telemetrySeries", "bucket"),
        ("fleetStats", "aircraftId"),
        ("fleetStats", "registration"),  # aircraft.registration, guarded above
        ("fleetStats", "lastDepartedAt"),
    }
