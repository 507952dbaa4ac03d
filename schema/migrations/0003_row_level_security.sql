-- Row-level security: enabled and forced on every table in dbx_aviation.
-- One policy per table for the gateway role; it matches no row when the
-- transaction's tenant is unset (current_org_id() is null). The owner role has
-- BYPASSRLS (migrations, seed, maintenance) and is never used by the gateway.
do $$
declare
    t record;
begin
    for t in
        select c.relname
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'dbx_aviation' and c.relkind in ('r', 'p') and not c.relispartition
    loop
        execute format('alter table dbx_aviation.%I enable row level security', t.relname);
        execute format('alter table dbx_aviation.%I force row level security', t.relname);
        execute format(
            'create policy tenant_isolation on dbx_aviation.%I to dbx_gateway '
            'using (org_id = dbx_aviation.current_org_id()) '
            'with check (org_id = dbx_aviation.current_org_id())',
            t.relname);
    end loop;
end
$$;

grant select on dbx_aviation.organizations to dbx_gateway;
grant select, insert, update on dbx_aviation.aircraft, dbx_aviation.flights,
    dbx_aviation.maintenance_events to dbx_gateway;
grant select, insert on dbx_aviation.flight_telemetry, dbx_aviation.telemetry_ingest_batches
    to dbx_gateway;
grant execute on function dbx_aviation.current_org_id(), dbx_aviation.current_user_id()
    to dbx_gateway;
