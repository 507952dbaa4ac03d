-- Audit log: who, which org, which table, what operation, old and new values.
-- The gateway role cannot read or write the log itself; the trigger function
-- is SECURITY DEFINER for that reason only, with a pinned search_path and an
-- explicit check that the row belongs to the transaction's tenant.
create table dbx_audit.audit_log (
    id bigint generated always as identity primary key,
    at timestamptz not null default clock_timestamp(),
    org_id uuid,
    user_id text,
    db_role text not null default current_user,
    table_name text not null,
    operation text not null check (operation in ('INSERT', 'UPDATE', 'DELETE', 'ERASE', 'ARCHIVE')),
    row_id uuid,
    old_values jsonb,
    new_values jsonb,
    txid bigint not null default txid_current()
);
create index audit_log_org_at_idx on dbx_audit.audit_log (org_id, at);
create index audit_log_row_idx on dbx_audit.audit_log (row_id);

create function dbx_audit.record_change() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    tenant uuid := nullif(current_setting('dbx.org_id', true), '')::uuid;
    row_org uuid;
    old_json jsonb;
    new_json jsonb;
begin
    if tg_op in ('UPDATE', 'DELETE') then
        old_json := to_jsonb(old);
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        new_json := to_jsonb(new);
    end if;
    row_org := coalesce((new_json ->> 'org_id')::uuid, (old_json ->> 'org_id')::uuid);
    -- Row-level security already enforces this; the check keeps the definer
    -- function from ever recording a change on behalf of another tenant.
    if tenant is not null and row_org is distinct from tenant then
        raise exception 'audit: row of another organization' using errcode = '42501';
    end if;
    insert into dbx_audit.audit_log (org_id, user_id, table_name, operation, row_id,
                                     old_values, new_values)
    values (row_org, nullif(current_setting('dbx.user_id', true), ''), tg_table_name, tg_op,
            coalesce((new_json ->> 'id')::uuid, (old_json ->> 'id')::uuid), old_json, new_json);
    return null;
end
$$;
revoke all on function dbx_audit.record_change() from public;

do $$
declare
    t text;
begin
    foreach t in array array['organizations', 'aircraft', 'flights', 'maintenance_events'] loop
        execute format(
            'create trigger audit_change after insert or update or delete on dbx_aviation.%I '
            'for each row execute function dbx_audit.record_change()', t);
    end loop;
end
$$;
