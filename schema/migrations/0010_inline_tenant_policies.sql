-- The gateway role's tenant policies compare org_id with the transaction's
-- setting directly instead of calling dbx_aviation.current_org_id().
--
-- That function carries `set search_path`, so PostgreSQL can never inline
-- it: wherever a policy is checked row by row (WITH CHECK on every inserted
-- telemetry point, USING on rows a scan filters) each row paid a full
-- function call with a GUC save and restore, about 1.9 us against 0.25 us for
-- the same expression inlined. A policy's expression is stored resolved
-- (functions, operators and types by OID), so writing it out keeps it as
-- immune to search_path as the function is. Same rule as 0003: no row when
-- the transaction's tenant is unset or empty.
do $$
declare
    t record;
begin
    for t in
        select c.relname
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'dbx_aviation' and c.relkind in ('r', 'p') and not c.relispartition
    loop
        execute format(
            'alter policy tenant_isolation on dbx_aviation.%I '
            'using (org_id = nullif(pg_catalog.current_setting(''dbx.org_id'', true), '''')::pg_catalog.uuid) '
            'with check (org_id = nullif(pg_catalog.current_setting(''dbx.org_id'', true), '''')::pg_catalog.uuid)',
            t.relname);
    end loop;
end
$$;
