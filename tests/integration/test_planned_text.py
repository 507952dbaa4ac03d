"""Planned reads write the text columns declared with the ``code`` codec
into JSON without escaping them (``gateway.data.planned_values``): that is
only sound while the tables' check constraints keep those columns to
``[A-Z0-9-]``. This fails the moment a migration loosens one of them, or a
field starts being written unescaped without being listed here."""

from __future__ import annotations

import asyncpg
from graphql import GraphQLObjectType

from gateway.api.plan.compile import codec_of
from gateway.api.plan.fields import ColumnPlan, plan_of
from gateway.api.schema import build_schema
from gateway.data.planned_values import value_text

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


def _unescaped() -> set[tuple[str, str]]:
    """(GraphQL type, column) of every field the planner writes as a code."""
    out: set[tuple[str, str]] = set()
    for gtype in build_schema()._schema.type_map.values():
        if not isinstance(gtype, GraphQLObjectType) or gtype.name.startswith("__"):
            continue
        for field in gtype.fields.values():
            p = plan_of(field)
            if isinstance(p, ColumnPlan) and codec_of(field, p) == "code":
                out.add((gtype.name, p.column))
    return out


async def test_guarded_fields_are_the_unescaped_ones() -> None:
    assert _unescaped() == {
        ("Aircraft", "registration"),
        ("Flight", "flight_number"),
        ("Flight", "origin"),
        ("Flight", "destination"),
        ("AircraftFlightStats", "registration"),  # aircraft.registration, guarded above
    }
    # the other codecs of strings escape, or write values that need none
    assert value_text("code", "c").startswith("coalesce('\"'")
    assert value_text("text", "c").startswith("coalesce(to_json(")
