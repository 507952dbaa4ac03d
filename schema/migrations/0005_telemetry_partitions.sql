-- Monthly telemetry partitions, created ahead of time. Partitions get RLS
-- enabled and forced too (with no policy, so reading one directly returns
-- nothing), and no grants: the gateway reaches telemetry only via the parent.
create function dbx_aviation.ensure_telemetry_partitions(from_month date, months integer)
    returns integer
    language plpgsql
    set search_path = pg_catalog
as $$
declare
    m date := date_trunc('month', from_month)::date;
    part text;
    created integer := 0;
begin
    if months < 0 or months > 600 then
        raise exception 'months must be between 0 and 600, got %', months;
    end if;
    for i in 0 .. months loop
        part := format('flight_telemetry_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        if to_regclass(format('dbx_aviation.%I', part)) is null then
            execute format(
                'create table dbx_aviation.%I partition of dbx_aviation.flight_telemetry '
                'for values from (%L) to (%L)',
                part, m::timestamptz, (m + interval '1 month')::timestamptz);
            execute format('alter table dbx_aviation.%I enable row level security', part);
            execute format('alter table dbx_aviation.%I force row level security', part);
            execute format('revoke all on dbx_aviation.%I from public', part);
            created := created + 1;
        end if;
        m := (m + interval '1 month')::date;
    end loop;
    return created;
end
$$;
revoke all on function dbx_aviation.ensure_telemetry_partitions(date, integer) from public;

-- Partitions for the current month and a year ahead exist from the start.
select dbx_aviation.ensure_telemetry_partitions(
    (date_trunc('month', now()) - interval '12 months')::date, 24);
