"""Catalog cases T5 and T6 beyond ``test_catalog.py``: a stricter lint of
views, materialized views, foreign tables and SECURITY DEFINER functions in
every schema (not only the dbx ones), and the leaky-function check run as
the gateway role through PgBouncer.

Owns: a scratch schema per T6 run (created and dropped by the test). Must
not touch any other schema's objects or data it did not create.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

GATEWAY_ROLE = "dbx_gateway"
# Objects that belong to an extension (pg_stat_statements' views) are the
# extension's contract, not ours.
NOT_EXTENSION = (
    "not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass"
    " and d.objid = c.oid and d.deptype = 'e')"
)
USER_SCHEMAS = "n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'"


async def test_no_definer_view_is_reachable_by_the_gateway_with_any_privilege(
    owner_conn: asyncpg.Connection,
) -> None:
    # A view without security_invoker runs with its owner's rights (RLS of
    # the owner): any privilege on it, direct or through PUBLIC, is a bypass.
    rows = await owner_conn.fetch(
        f"""
        select n.nspname || '.' || c.relname as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'v' and {USER_SCHEMAS} and {NOT_EXTENSION}
          and not coalesce('security_invoker=true' = any(c.reloptions), false)
          and (has_table_privilege($1, c.oid, 'select,insert,update,delete,truncate,references')
               or has_any_column_privilege($1, c.oid, 'select,insert,update,references'))
        """,
        GATEWAY_ROLE,
    )
    assert [r["name"] for r in rows] == []


async def test_no_materialized_view_or_foreign_table_is_granted_to_the_gateway(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        f"""
        select n.nspname || '.' || c.relname as name, c.relkind::text as kind
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('m', 'f') and {USER_SCHEMAS} and {NOT_EXTENSION}
          and (has_table_privilege($1, c.oid, 'select,insert,update,delete,truncate,references')
               or has_any_column_privilege($1, c.oid, 'select,insert,update,references'))
        """,
        GATEWAY_ROLE,
    )
    assert [(r["name"], r["kind"]) for r in rows] == []


async def test_every_definer_function_anywhere_pins_a_safe_search_path_without_public_execute(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        f"""
        select n.nspname || '.' || p.proname as name,
               (select substr(s, length('search_path=') + 1)
                from unnest(coalesce(p.proconfig, '{{}}')) s
                where s like 'search_path=%') as search_path,
               exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                       where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_execute
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.prosecdef and {USER_SCHEMAS}
          and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                          and d.objid = p.oid and d.deptype = 'e')
        """
    )
    assert len(rows) >= 2  # the audit trigger and the analytics view's accessor
    unpinned = [r["name"] for r in rows if r["search_path"] is None]
    assert unpinned == []
    # pg_temp, if listed, comes last; no schema that PUBLIC could create in
    unsafe = []
    for r in rows:
        path = [p.strip().strip('"') for p in r["search_path"].split(",") if p.strip()]
        if "public" in path or "$user" in path or ("pg_temp" in path and path[-1] != "pg_temp"):
            unsafe.append((r["name"], r["search_path"]))
    assert unsafe == []
    assert [r["name"] for r in rows if r["public_execute"]] == []


# -- T6 leaky function ---------------------------------------------------------


async def _seed_org(conn: asyncpg.Connection, org: uuid.UUID, tag: str) -> tuple[str, uuid.UUID]:
    """One aircraft, one flight and three telemetry points; returns the
    registration and the flight id (the values a leak would show)."""
    registration = f"{tag}{uuid.uuid4().hex[:6].upper()}"
    aircraft = await conn.fetchval(
        "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model)"
        " values ($1, $2, 'Airbus', 'A320') returning id",
        org,
        registration,
    )
    departed = dt.datetime(2026, 1, 10, 8, tzinfo=dt.UTC)
    flight = await conn.fetchval(
        "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin,"
        " destination, departed_at, arrived_at, status) values ($1, $2, 'LK1', 'EDDF', 'LFPG',"
        " $3::timestamptz, $3::timestamptz + interval '2 hours', 'completed') returning id",
        org,
        aircraft,
        departed,
    )
    await conn.executemany(
        "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, aircraft_id,"
        " altitude_m) values ($1, $2, $3, $4, $5)",
        [(flight, departed + dt.timedelta(minutes=i), org, aircraft, 1000.0 + i) for i in range(3)],
    )
    return registration, flight


async def test_cheap_leaky_function_never_sees_another_orgs_rows(
    owner_conn: asyncpg.Connection, make_org: Any, stack: dict[str, Any]
) -> None:
    org_a, org_b = await make_org(), await make_org()
    reg_a, flight_a = await _seed_org(owner_conn, org_a, "LA")
    reg_b, flight_b = await _seed_org(owner_conn, org_b, "LB")
    scratch = f"dbx_t6_{uuid.uuid4().hex[:10]}"
    await owner_conn.execute(
        f"""
        create schema {scratch};
        -- cheaper than any RLS qual, so the planner would like to run it first
        create function {scratch}.f_leak(text) returns boolean
            language plpgsql cost 0.0000001
            as $$ begin raise notice 'f_leak => %', $1; return true; end $$;
        grant usage on schema {scratch} to {GATEWAY_ROLE};
        grant execute on function {scratch}.f_leak(text) to {GATEWAY_ROLE};
        """
    )
    notices: list[str] = []
    conn = await asyncpg.connect(stack["dsns"]["gateway_primary"], statement_cache_size=0)
    try:
        conn.add_log_listener(lambda _c, msg: notices.append(str(msg.message)))
        async with conn.transaction():
            await conn.execute("select set_config('dbx.org_id', $1, true)", str(org_a))
            regs = await conn.fetch(
                f"select registration from dbx_aviation.aircraft"
                f" where {scratch}.f_leak(registration)"
            )
            telemetry = await conn.fetch(
                f"select flight_id from dbx_aviation.flight_telemetry"
                f" where recorded_at >= '2026-01-10' and recorded_at < '2026-01-11'"
                f" and {scratch}.f_leak(flight_id::text || ':' || altitude_m::text)"
            )
            # the same through a join, where the function sees both sides
            joined = await conn.fetch(
                f"select t.flight_id from dbx_aviation.flight_telemetry t"
                f" join dbx_aviation.aircraft a on a.id = t.aircraft_id"
                f" where t.recorded_at >= '2026-01-10' and t.recorded_at < '2026-01-11'"
                f" and {scratch}.f_leak(a.registration || '/' || t.flight_id::text)"
            )
    finally:
        await conn.close()
        await owner_conn.execute(f"drop schema {scratch} cascade")
    # the function ran (the test can fail), on A's rows
    assert reg_a in {r["registration"] for r in regs}
    assert flight_a in {r["flight_id"] for r in telemetry}
    assert flight_a in {r["flight_id"] for r in joined}
    assert any(reg_a in n for n in notices) and any(str(flight_a) in n for n in notices)
    leaked = [n for n in notices if reg_b in n or str(flight_b) in n]
    assert leaked == []
    assert reg_b not in {r["registration"] for r in regs}
    assert flight_b not in {r["flight_id"] for r in telemetry + joined}
