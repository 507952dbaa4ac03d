-- Maintenance by the owner role, and telemetry retention.
--
-- Row-level security is forced on every dbx_aviation table, so the tables'
-- owner is subject to it unless the role has BYPASSRLS, which only a
-- superuser can grant and which the local stack does not. Without a policy
-- naming the owner, seed, maintain and test fixtures (all run as the owner)
-- could neither read nor write. The owner can switch RLS off on its own tables
-- anyway, so a policy for it adds no power; the gateway role is not a member
-- of the owner role and never matches it. COPY FROM stays refused for a role
-- under RLS, so bulk loads by a non-BYPASSRLS owner go through a staging table.
do $$
declare
    t record;
begin
    for t in
        select c.relname, pg_get_userbyid(c.relowner) as owner
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'dbx_aviation' and c.relkind in ('r', 'p') and not c.relispartition
    loop
        execute format(
            'create policy owner_maintenance on dbx_aviation.%I to %I using (true) with check (true)',
            t.relname, t.owner);
    end loop;
end
$$;

-- Telemetry rows moved out of the hot table by a per-organization retention
-- shorter than the partition-level one. Not reachable by the gateway role
-- (no usage on dbx_archive).
create table dbx_archive.flight_telemetry (
    like dbx_aviation.flight_telemetry including defaults including constraints,
    archived_at timestamptz not null default now(),
    primary key (flight_id, recorded_at)
);
create index flight_telemetry_org_recorded_idx on dbx_archive.flight_telemetry (org_id, recorded_at);

-- Attached telemetry partitions with their bounds, oldest first.
create function dbx_aviation.telemetry_partitions()
    returns table (partition_name text, lower_bound timestamptz, upper_bound timestamptz)
    language sql stable
    set search_path = pg_catalog
as $$
    select c.relname::text, b[1]::timestamptz, b[2]::timestamptz
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    cross join lateral regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') as b
    where i.inhparent = 'dbx_aviation.flight_telemetry'::regclass
    order by 2
$$;

-- Partitions from the earliest month holding data (or the current month) to
-- months_ahead months after the current one. Idempotent.
create function dbx_aviation.ensure_telemetry_partitions_ahead(months_ahead integer)
    returns table (from_month date, created integer)
    language plpgsql
    set search_path = pg_catalog
as $$
declare
    p record;
    first_month date := date_trunc('month', now())::date;
    span integer;
begin
    if months_ahead < 0 or months_ahead > 120 then
        raise exception 'months_ahead must be between 0 and 120, got %', months_ahead;
    end if;
    -- Partition pruning makes each probe touch one partition's first page.
    for p in select * from dbx_aviation.telemetry_partitions() loop
        if exists (select 1 from dbx_aviation.flight_telemetry
                   where recorded_at >= p.lower_bound and recorded_at < p.upper_bound) then
            first_month := least(first_month, date_trunc('month', p.lower_bound)::date);
            exit;
        end if;
    end loop;
    span := (extract(year from age(date_trunc('month', now())::date, first_month)) * 12
             + extract(month from age(date_trunc('month', now())::date, first_month)))::integer
            + months_ahead;
    from_month := first_month;
    created := dbx_aviation.ensure_telemetry_partitions(first_month, span);
    return next;
end
$$;

-- Whole partitions older than every organization's retention are detached and
-- moved to dbx_archive (never dropped here: D1 wants the archive checked
-- before anything is deleted). Returns what was moved.
create function dbx_aviation.archive_expired_telemetry_partitions()
    returns table (partition_name text, archived_as text)
    language plpgsql
    set search_path = pg_catalog
as $$
declare
    cutoff timestamptz;
    p record;
    target text;
begin
    select now() - make_interval(days => max(telemetry_retention_days))
    into cutoff from dbx_aviation.organizations;
    if cutoff is null then
        return;  -- no organization, no retention to apply
    end if;
    for p in select * from dbx_aviation.telemetry_partitions() where upper_bound <= cutoff loop
        target := p.partition_name;
        if to_regclass(format('dbx_archive.%I', target)) is not null then
            target := format('%s_%s', target, to_char(clock_timestamp(), 'YYYYMMDDHH24MISS'));
            execute format('alter table dbx_aviation.%I rename to %I', p.partition_name, target);
        end if;
        execute format('alter table dbx_aviation.flight_telemetry detach partition dbx_aviation.%I',
                       target);
        execute format('alter table dbx_aviation.%I set schema dbx_archive', target);
        -- the partition keeps RLS forced; let its owner read it for checks and restores
        execute format(
            'create policy owner_maintenance on dbx_archive.%I to %I using (true) with check (true)',
            target, (select pg_get_userbyid(relowner) from pg_class
                     where oid = to_regclass(format('dbx_archive.%I', target))));
        partition_name := p.partition_name;
        archived_as := format('dbx_archive.%I', target);
        return next;
    end loop;
end
$$;

-- Rows older than an organization's own retention, inside partitions still
-- attached, move to dbx_archive.flight_telemetry; one ARCHIVE audit row per
-- organization that had rows to move.
create function dbx_aviation.archive_org_telemetry()
    returns table (org_id uuid, moved bigint, cutoff timestamptz)
    language plpgsql
    set search_path = pg_catalog
as $$
#variable_conflict use_column
declare
    o record;
    n bigint;
begin
    for o in select id, telemetry_retention_days from dbx_aviation.organizations order by id loop
        cutoff := now() - make_interval(days => o.telemetry_retention_days);
        with gone as (
            delete from dbx_aviation.flight_telemetry t
            where t.org_id = o.id and t.recorded_at < cutoff
            returning t.*
        ), kept as (
            insert into dbx_archive.flight_telemetry (
                flight_id, recorded_at, org_id, aircraft_id, altitude_m, airspeed_ms, latitude,
                longitude, heading_deg, vertical_speed_ms, engine_temp_c, fuel_flow_kg_h)
            select flight_id, recorded_at, org_id, aircraft_id, altitude_m, airspeed_ms, latitude,
                   longitude, heading_deg, vertical_speed_ms, engine_temp_c, fuel_flow_kg_h
            from gone
            on conflict do nothing
            returning 1
        )
        select count(*) into n from gone;
        if n > 0 then
            insert into dbx_audit.audit_log (org_id, user_id, table_name, operation, old_values,
                                             new_values)
            values (o.id, nullif(current_setting('dbx.user_id', true), ''), 'flight_telemetry',
                    'ARCHIVE',
                    jsonb_build_object('rows', n, 'recorded_before', cutoff,
                                       'retention_days', o.telemetry_retention_days),
                    jsonb_build_object('moved_to', 'dbx_archive.flight_telemetry'));
            org_id := o.id;
            moved := n;
            return next;
        end if;
    end loop;
end
$$;

-- Refresh every materialized view in dbx_analytics: concurrently when it is
-- populated and has the unique index that requires, plainly otherwise.
create function dbx_aviation.refresh_analytics_views()
    returns table (view_name text, mode text)
    language plpgsql
    set search_path = pg_catalog
as $$
declare
    v record;
begin
    for v in
        select c.oid, c.relname, c.relispopulated,
               exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisunique
                       and i.indpred is null and i.indexprs is null) as has_unique
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'dbx_analytics' and c.relkind = 'm'
        order by c.relname
    loop
        view_name := format('dbx_analytics.%I', v.relname);
        if v.relispopulated and v.has_unique then
            execute format('refresh materialized view concurrently dbx_analytics.%I', v.relname);
            mode := 'concurrently';
        else
            execute format('refresh materialized view dbx_analytics.%I', v.relname);
            mode := 'blocking';
        end if;
        return next;
    end loop;
end
$$;

revoke all on function dbx_aviation.telemetry_partitions() from public;
revoke all on function dbx_aviation.ensure_telemetry_partitions_ahead(integer) from public;
revoke all on function dbx_aviation.archive_expired_telemetry_partitions() from public;
revoke all on function dbx_aviation.archive_org_telemetry() from public;
revoke all on function dbx_aviation.refresh_analytics_views() from public;
