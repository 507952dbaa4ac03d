"""SQL spans from a real ``Database`` on the stack: node name, the node's real
address (not PgBouncer's), intent; and the ``traceparent`` reaching
PostgreSQL, seen in ``pg_stat_activity`` of the node that ran the statement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db import Database
from gateway.db.connection import TenantConnection
from gateway.observability import CommentScope, Observability

ALWAYS_ON = {"OTEL_TRACES_SAMPLER": "always_on"}


def node_ports(stack: dict[str, Any]) -> dict[str, int]:
    return {n["name"]: int(n["port"]) for n in stack["nodes"]}


def admin_dsn(stack: dict[str, Any], name: str) -> str:
    return next(str(n["admin_dsn"]) for n in stack["nodes"] if n["name"] == name)


Traced = tuple[Database, Observability, InMemorySpanExporter]


@pytest.fixture
async def traced_db(settings: Settings) -> AsyncIterator[Callable[[CommentScope], Any]]:
    opened: list[Traced] = []

    async def open_db(scope: CommentScope = "transaction") -> Traced:
        exporter = InMemorySpanExporter()
        obs = Observability(
            settings, span_exporter=exporter, env=ALWAYS_ON, sql_comment_scope=scope
        )
        db = Database(settings, observer=obs)
        await db.start()
        opened.append((db, obs, exporter))
        return db, obs, exporter

    yield open_db
    for db, obs, _ in opened:
        await db.close()
        obs.shutdown()


async def principal(make_org: Callable[..., Any]) -> Principal:
    return Principal(org_id=await make_org(), subject="tracing-test", roles=frozenset({"operator"}))


def sql_spans(exporter: InMemorySpanExporter, needle: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.attributes and needle in str(s.attributes.get("db.query.text", ""))
    ]


async def test_sql_spans_name_node_real_address_and_intent(
    traced_db: Any, make_org: Any, stack: dict[str, Any]
) -> None:
    db, obs, exporter = await traced_db()
    who = await principal(make_org)
    ports = node_ports(stack)

    async def count_aircraft(conn: TenantConnection, marker: str) -> int:
        return int(
            await conn.fetchval(f"select count(*) /* {marker} */ from dbx_aviation.aircraft")
        )

    with obs.tracer.start_as_current_span("loader test") as parent:
        assert await db.run(who, "read", None, count_aircraft, "read-marker") == 0
        async with db.transaction(who, "write") as conn:
            assert await count_aircraft(conn, "write-marker") == 0

    for marker, intent in (("read-marker", "read"), ("write-marker", "write")):
        (span,) = sql_spans(exporter, marker)
        attrs = dict(span.attributes or {})
        assert attrs["db.system.name"] == "postgresql"
        assert attrs["db.dbx.intent"] == intent
        node = str(attrs["db.dbx.node"])
        if intent == "write":
            assert node == "primary"
        # the node's own port (55432..), never PgBouncer's 6432
        assert attrs["server.port"] == ports[node], (node, attrs)
        assert attrs["server.port"] != 6432
        assert attrs["db.response.returned_rows"] == 1
        assert isinstance(attrs["db.dbx.route_reason"], str) and attrs["db.dbx.route_reason"]
        assert isinstance(attrs["db.dbx.pool_wait_s"], float)
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
    assert obs.metrics.sql_duration.count("primary", "write") >= 1


async def test_sql_error_span_has_error_status(traced_db: Any, make_org: Any) -> None:
    db, obs, exporter = await traced_db()
    who = await principal(make_org)

    async def bad(conn: TenantConnection) -> None:
        await conn.fetchval("select 1/0 as error_marker")

    with pytest.raises(Exception):  # noqa: B017 - the gateway's class for 22012 is not ours to pin
        await db.run(who, "read", None, bad)
    (span,) = sql_spans(exporter, "error_marker")
    assert span.status.status_code.name == "ERROR"
    node = str((span.attributes or {})["db.dbx.node"])
    assert obs.metrics.sql_errors.value(node, "read") == 1


async def find_traceparent(dsn: str, traceparent: str, timeout_s: float) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            rows = await conn.fetch(
                "select query, state from pg_stat_activity where position($1 in query) > 0"
                " and pid <> pg_backend_pid()",
                traceparent,
            )
            if rows or asyncio.get_running_loop().time() > deadline:
                return rows
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_traceparent_reaches_postgres_on_setup_statement(
    traced_db: Any, make_org: Any, stack: dict[str, Any]
) -> None:
    """Default scope: the set-up statement of the transaction carries it;
    ``pg_stat_activity`` shows it while the transaction has not run another
    statement (and the server log shows it when the set-up is slow)."""
    db, obs, _ = await traced_db("transaction")
    who = await principal(make_org)
    with obs.tracer.start_as_current_span("request") as span:
        ctx = span.get_span_context()
        traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"
        async with db.transaction(who, "read") as conn:
            rows = await find_traceparent(admin_dsn(stack, conn.node_name), traceparent, 2.0)
            await conn.fetchval("select 1")
    assert rows, "set-up statement with traceparent not seen in pg_stat_activity"
    assert "set_config('dbx.org_id'" in rows[0]["query"]
    assert rows[0]["state"] == "idle in transaction"
    assert str(who.org_id) in rows[0]["query"]


async def test_traceparent_on_a_running_statement_in_statement_scope(
    traced_db: Any, make_org: Any, stack: dict[str, Any]
) -> None:
    """``sql_comment_scope="statement"``: a long statement shows the trace
    while it runs."""
    db, obs, _ = await traced_db("statement")
    who = await principal(make_org)
    with obs.tracer.start_as_current_span("request") as span:
        ctx = span.get_span_context()
        traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"
        async with db.transaction(who, "read") as conn:
            sleeper = asyncio.create_task(conn.fetchval("select pg_sleep(1)"))
            try:
                rows = await find_traceparent(admin_dsn(stack, conn.node_name), traceparent, 0.9)
            finally:
                await sleeper
    assert rows, "running statement with traceparent not seen in pg_stat_activity"
    assert "pg_sleep(1)" in rows[0]["query"] and rows[0]["state"] == "active"


async def test_no_comment_without_a_span(
    traced_db: Any, make_org: Any, stack: dict[str, Any]
) -> None:
    db, obs, _ = await traced_db("statement")
    who = await principal(make_org)
    marker = uuid.uuid4().hex
    async with db.transaction(who, "read") as conn:
        await conn.fetchval(f"select '{marker}'")
        probe = await asyncpg.connect(admin_dsn(stack, conn.node_name))
        try:
            query = await probe.fetchval(
                "select query from pg_stat_activity where position($1 in query) > 0"
                " and pid <> pg_backend_pid()",
                marker,
            )
        finally:
            await probe.close()
    assert query is not None and "traceparent" not in query
