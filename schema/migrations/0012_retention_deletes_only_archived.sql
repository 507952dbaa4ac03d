-- Retention by organization deletes from the live table only points that the
-- archive holds with the same values.
--
-- 0006's archive_org_telemetry deleted every expired row and inserted it into
-- dbx_archive.flight_telemetry with ON CONFLICT DO NOTHING: a point re-sent
-- after its first copy was archived was deleted and never archived, and the
-- ARCHIVE audit row counted it as moved. Now each expired live row is one of:
--   moved                  not yet archived: inserted into the archive, deleted;
--   duplicate_of_archived  archived already with the same values: deleted
--                          (the archive holds it);
--   kept_conflicting       archived already with other values: stays live,
--                          counted in every run until an operator decides
--                          which copy is right (RUNBOOK: retention).
-- The ARCHIVE audit row and the returned row carry the three counts; the
-- function fails (and deletes nothing) if the rows deleted are not exactly
-- the moved and duplicate ones. The result gains columns, so the function is
-- dropped and created again (0006 is applied and immutable).
drop function dbx_aviation.archive_org_telemetry();

create function dbx_aviation.archive_org_telemetry()
    returns table (org_id uuid, moved bigint, duplicate_of_archived bigint,
                   kept_conflicting bigint, cutoff timestamptz)
    language plpgsql
    set search_path = pg_catalog
as $$
#variable_conflict use_column
declare
    o record;
    n_expired bigint;
    n_deleted bigint;
begin
    for o in select id, telemetry_retention_days from dbx_aviation.organizations order by id loop
        cutoff := now() - make_interval(days => o.telemetry_retention_days);
        -- One statement, one snapshot: `dup` reads the archive as it was
        -- before `ins` wrote to it. The expired rows are locked first, so the
        -- values archived are the values deleted.
        with expired as (
            select t.* from dbx_aviation.flight_telemetry t
            where t.org_id = o.id and t.recorded_at < cutoff
            for update
        ), dup as (
            select e.flight_id, e.recorded_at
            from expired e
            join dbx_archive.flight_telemetry a
              on a.flight_id = e.flight_id and a.recorded_at = e.recorded_at
            where (a.org_id, a.aircraft_id, a.altitude_m, a.airspeed_ms, a.latitude, a.longitude,
                   a.heading_deg, a.vertical_speed_ms, a.engine_temp_c, a.fuel_flow_kg_h)
                  is not distinct from
                  (e.org_id, e.aircraft_id, e.altitude_m, e.airspeed_ms, e.latitude, e.longitude,
                   e.heading_deg, e.vertical_speed_ms, e.engine_temp_c, e.fuel_flow_kg_h)
        ), ins as (
            insert into dbx_archive.flight_telemetry (
                flight_id, recorded_at, org_id, aircraft_id, altitude_m, airspeed_ms, latitude,
                longitude, heading_deg, vertical_speed_ms, engine_temp_c, fuel_flow_kg_h)
            select flight_id, recorded_at, org_id, aircraft_id, altitude_m, airspeed_ms, latitude,
                   longitude, heading_deg, vertical_speed_ms, engine_temp_c, fuel_flow_kg_h
            from expired
            on conflict (flight_id, recorded_at) do nothing
            returning flight_id, recorded_at
        ), gone as (
            delete from dbx_aviation.flight_telemetry t
            where t.org_id = o.id and t.recorded_at < cutoff
              and (t.flight_id, t.recorded_at) in (
                  select flight_id, recorded_at from ins
                  union all
                  select flight_id, recorded_at from dup)
            returning 1
        )
        select (select count(*) from expired), (select count(*) from ins),
               (select count(*) from dup), (select count(*) from gone)
        into n_expired, moved, duplicate_of_archived, n_deleted;
        if n_deleted <> moved + duplicate_of_archived then
            raise exception 'retention of org %: % rows deleted, but % archived and % duplicate',
                o.id, n_deleted, moved, duplicate_of_archived;
        end if;
        kept_conflicting := n_expired - n_deleted;
        if n_expired > 0 then
            insert into dbx_audit.audit_log (org_id, user_id, table_name, operation, old_values,
                                             new_values)
            values (o.id, nullif(current_setting('dbx.user_id', true), ''), 'flight_telemetry',
                    'ARCHIVE',
                    jsonb_build_object('moved', moved,
                                       'duplicate_of_archived', duplicate_of_archived,
                                       'kept_conflicting', kept_conflicting,
                                       'deleted', n_deleted,
                                       'recorded_before', cutoff,
                                       'retention_days', o.telemetry_retention_days),
                    jsonb_build_object('moved_to', 'dbx_archive.flight_telemetry'));
            org_id := o.id;
            return next;
        end if;
    end loop;
end
$$;

revoke all on function dbx_aviation.archive_org_telemetry() from public;
