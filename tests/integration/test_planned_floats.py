"""``gateway.data.planned_values.float_text`` writes a float8 in SQL exactly as
``orjson`` writes the Python float the resolvers get: checked value by value
in PostgreSQL over edges of every branch (zero and negative zero, the 1e-5,
1e-4, 1e15 and 1e16 boundaries, subnormals, integral values, long
fractions), and over random floats; values it must not write (1e16 and up,
non-finite) fail the statement. Also how ``fetch_json`` joins a
statement's pieces, and when it declines."""

from __future__ import annotations

import math
import random
import uuid

import asyncpg
import orjson
import pytest

from gateway.data.planned import (
    analytics_statement,
    fetch_json,
    json_string,
    root_statement,
    text_list,
    text_object,
)
from gateway.data.planned_values import float_text, int_text

EDGES = [
    0.0, -0.0, 1.0, -1.0, 123.0, 0.1, 1 / 3, -2 / 3, 1e-4, 9.999999999999999e-05, 1e-5,
    9.99e-6, 1.5e-7, 5e-324, 2.2250738585072014e-308, 1e15 - 1, 1e15, 1.5e15, 9.999999999999998e15,
    123456789.125, 11303.5, -11303.5, 148.28416666666666, 1e-300, 4.9e-5, 0.00012,
]  # fmt: skip


async def written(conn: asyncpg.Connection, values: list[float]) -> list[str]:
    rows = await conn.fetch(f"select {float_text('v')} as t from unnest($1::float8[]) v", values)
    return [r["t"] for r in rows]


@pytest.fixture
async def conn(owner_conn: asyncpg.Connection) -> asyncpg.Connection:
    await owner_conn.execute("set extra_float_digits = 1")  # as the planned statements require
    return owner_conn


async def test_edges_are_written_as_orjson_writes_them(conn: asyncpg.Connection) -> None:
    assert await written(conn, EDGES) == [orjson.dumps(v).decode() for v in EDGES]
    assert await written(conn, [-v for v in EDGES]) == [orjson.dumps(-v).decode() for v in EDGES]


async def test_random_floats_are_written_as_orjson_writes_them(conn: asyncpg.Connection) -> None:
    rng = random.Random(11)
    values = [
        rng.choice([1, -1]) * rng.uniform(1, 10) * 10.0 ** rng.randint(-320, 15)
        for _ in range(5000)
    ]
    values += [float(rng.randint(-(10**15), 10**15)) for _ in range(500)]
    values = [v for v in values if abs(v) < 1e16 and math.isfinite(v)]
    assert await written(conn, values) == [orjson.dumps(v).decode() for v in values]


async def test_null_is_null(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval(f"select {float_text('null::float8')}") == "null"


@pytest.mark.parametrize("bad", [1e16, -1e16, 1.5e300, math.inf, -math.inf, math.nan])
async def test_values_it_must_not_write_fail_the_statement(
    conn: asyncpg.Connection, bad: float
) -> None:
    with pytest.raises(asyncpg.PostgresError):
        await written(conn, [bad])


async def test_statements_answer_joined_or_decline(conn: asyncpg.Connection) -> None:
    """A planned statement's row holds the pieces of the ``data`` text, which
    ``fetch_json`` joins; without shortest floats (analytics) there is no
    row, and a NULL piece declines too: the resolvers answer then."""
    org = uuid.uuid4()
    obj = text_object([("v", float_text("$2::float8")), ("n", json_string("X"))])
    ints = text_list(int_text("t.x"), "select 1 as x", "t", "t.x")
    nested = text_object([("a", obj), ("b", ints)])
    # spliced, neighbouring constants merged into one literal
    assert """'{"a":{"v":'""" in nested and """',"n":"X"},"b":['""" in nested
    sql = analytics_statement(nested)
    assert await fetch_json(conn, sql, [org, 0.1]) == '{"a":{"v":0.1,"n":"X"},"b":[1]}'
    assert await fetch_json(conn, root_statement(obj), [org, None]) == '{"v":null,"n":"X"}'
    assert await fetch_json(conn, root_statement("null::text"), [org]) is None
    await conn.execute("set extra_float_digits = 0")
    try:
        assert await fetch_json(conn, sql, [org, 0.1]) is None
    finally:
        await conn.execute("set extra_float_digits = 1")
