-- Roles and namespaces.
-- Roles are cluster-wide and need CREATEROLE, so they are made by whoever sets
-- up the cluster (deploy/local/stack, or a DBA in production). This migration
-- only checks that they exist with safe attributes and refuses to go on
-- otherwise: the gateway role must never be able to bypass row-level security.
do $$
declare
    r record;
begin
    for r in select unnest(array['dbx_gateway', 'dbx_replicator']) as name loop
        if not exists (select 1 from pg_roles where rolname = r.name) then
            raise exception 'role % is missing: create it first (see deploy/local/README.md)', r.name;
        end if;
    end loop;
    if exists (select 1 from pg_roles where rolname = 'dbx_gateway'
               and (rolsuper or rolbypassrls or rolcreaterole or rolcreatedb)) then
        raise exception 'role dbx_gateway must be NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB';
    end if;
end
$$;

create extension if not exists pgcrypto;

create schema if not exists dbx_aviation;
create schema if not exists dbx_analytics;
create schema if not exists dbx_audit;
create schema if not exists dbx_archive;

revoke all on schema public from public;
revoke all on schema dbx_aviation, dbx_analytics, dbx_audit, dbx_archive from public;
grant usage on schema dbx_aviation, dbx_analytics to dbx_gateway;

-- The tenant of the current transaction, or null when unset. A custom setting
-- that was set locally in an earlier transaction reads back as '' afterwards,
-- hence the nullif: both cases must fail closed (match no row).
create function dbx_aviation.current_org_id() returns uuid
    language sql stable parallel safe
    set search_path = pg_catalog
as $$ select nullif(current_setting('dbx.org_id', true), '')::uuid $$;

create function dbx_aviation.current_user_id() returns text
    language sql stable parallel safe
    set search_path = pg_catalog
as $$ select nullif(current_setting('dbx.user_id', true), '') $$;
