"""Catalog lint of the live schema (TEST-CATALOG T4/T5): a table, view,
function or foreign key added without the safeguards fails here."""

from __future__ import annotations

import asyncpg

GATEWAY_ROLE = "dbx_gateway"
DBX_SCHEMAS = ("dbx_aviation", "dbx_analytics", "dbx_audit", "dbx_archive")
# The gateway role's policy, as PostgreSQL prints it back (migration 0010):
# rows of the transaction's org only, none when the setting is unset or empty.
ORG_POLICY = "(org_id = (NULLIF(current_setting('dbx.org_id'::text, true), ''::text))::uuid)"


async def test_every_aviation_table_and_partition_has_rls_enabled_and_forced(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        "select c.relname, c.relrowsecurity, c.relforcerowsecurity "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'dbx_aviation' and c.relkind in ('r', 'p')"
    )
    assert len(rows) >= 6  # the five domain tables plus ingest batches, and partitions
    assert any(r["relname"].startswith("flight_telemetry_y") for r in rows)
    unsafe = [r["relname"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])]
    assert unsafe == []


async def test_gateway_role_is_not_superuser_and_cannot_bypass_rls(
    owner_conn: asyncpg.Connection,
) -> None:
    role = await owner_conn.fetchrow(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles "
        "where rolname = $1",
        GATEWAY_ROLE,
    )
    assert role is not None
    assert dict(role) == {
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
    }


async def test_gateway_role_owns_nothing_in_the_dbx_schemas(owner_conn: asyncpg.Connection) -> None:
    owned = await owner_conn.fetch(
        """
        with gw as (select oid from pg_roles where rolname = $1)
        select 'schema ' || nspname as what from pg_namespace
        where nspname = any($2::text[]) and nspowner = (select oid from gw)
        union all
        select 'relation ' || n.nspname || '.' || c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any($2::text[]) and c.relowner = (select oid from gw)
        union all
        select 'function ' || n.nspname || '.' || p.proname from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any($2::text[]) and p.proowner = (select oid from gw)
        """,
        GATEWAY_ROLE,
        list(DBX_SCHEMAS),
    )
    assert [r["what"] for r in owned] == []


async def test_every_tenant_table_has_an_org_policy_for_reads_and_writes_of_the_gateway_role(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        """
        select c.relname,
               exists (select 1 from pg_policy p
                       where p.polrelid = c.oid
                         and (p.polroles @> array[(select oid from pg_roles where rolname = $1)]
                              or p.polroles = '{0}')
                         and pg_get_expr(p.polqual, p.polrelid) = $2
                         and pg_get_expr(p.polwithcheck, p.polrelid) = $2)
                   as has_policy
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'dbx_aviation' and c.relkind in ('r', 'p') and not c.relispartition
        """,
        GATEWAY_ROLE,
        ORG_POLICY,
    )
    assert rows
    assert [r["relname"] for r in rows if not r["has_policy"]] == []


async def test_no_view_or_materialized_view_in_analytics_is_granted_to_the_gateway(
    owner_conn: asyncpg.Connection,
) -> None:
    granted = await owner_conn.fetch(
        "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'dbx_analytics' and c.relkind in ('m', 'v') "
        "and (has_table_privilege($1, c.oid, 'select') or has_table_privilege($1, c.oid, 'insert')"
        " or has_table_privilege($1, c.oid, 'update') or has_table_privilege($1, c.oid, 'delete'))",
        GATEWAY_ROLE,
    )
    assert [r["relname"] for r in granted] == []


async def test_every_view_the_gateway_can_read_runs_as_invoker(
    owner_conn: asyncpg.Connection,
) -> None:
    definer_views = await owner_conn.fetch(
        "select n.nspname || '.' || c.relname as name from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = any($2::text[]) and c.relkind = 'v' "
        "and has_table_privilege($1, c.oid, 'select') "
        "and not coalesce('security_invoker=true' = any(c.reloptions), false)",
        GATEWAY_ROLE,
        list(DBX_SCHEMAS),
    )
    assert [r["name"] for r in definer_views] == []


async def test_every_security_definer_function_pins_search_path_and_denies_public(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        """
        select n.nspname || '.' || p.proname as name,
               exists (select 1 from unnest(coalesce(p.proconfig, '{}')) s
                       where s like 'search_path=%') as pinned,
               exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                       where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_execute
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.prosecdef and n.nspname = any($1::text[])
        """,
        list(DBX_SCHEMAS),
    )
    assert any(r["name"] == "dbx_audit.record_change" for r in rows)
    assert [r["name"] for r in rows if not r["pinned"]] == []
    assert [r["name"] for r in rows if r["public_execute"]] == []


async def test_every_foreign_key_leads_an_index_on_the_referencing_table(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        """
        select con.conrelid::regclass::text as tbl, con.conname,
               exists (select 1 from pg_index i
                       where i.indrelid = con.conrelid and i.indkey[0] = con.conkey[1]) as indexed
        from pg_constraint con join pg_namespace n on n.oid = con.connamespace
        where con.contype = 'f' and n.nspname = any($1::text[])
        """,
        list(DBX_SCHEMAS),
    )
    assert len(rows) >= 4
    assert [f"{r['tbl']}.{r['conname']}" for r in rows if not r["indexed"]] == []


async def test_telemetry_has_no_default_partition(owner_conn: asyncpg.Connection) -> None:
    partdefid = await owner_conn.fetchval(
        "select partdefid from pg_partitioned_table "
        "where partrelid = 'dbx_aviation.flight_telemetry'::regclass"
    )
    assert partdefid == 0
