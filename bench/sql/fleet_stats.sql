-- Q3 of the benchmark: a database-bound fleet statistics function, created by
-- bench/run.py as the owner role (idempotent). SECURITY INVOKER, so row-level
-- security decides what it sees: the same rows for DBX, PostGraphile and raw
-- asyncpg. `since` varies per request so no cache can answer it.
create schema if not exists dbx_bench;
grant usage on schema dbx_bench to dbx_gateway;

create or replace function dbx_bench.fleet_stats(since timestamptz)
returns table (
    aircraft_id uuid,
    registration text,
    flights bigint,
    completed bigint,
    flight_hours numeric,
    last_departed_at timestamptz
)
language sql stable security invoker parallel safe
as $$
    select a.id, a.registration,
           count(f.id),
           count(f.id) filter (where f.status = 'completed'),
           round(coalesce(sum(extract(epoch from f.arrived_at - f.departed_at)) / 3600.0, 0), 2),
           max(f.departed_at)
    from dbx_aviation.aircraft a
    left join dbx_aviation.flights f
           on f.org_id = a.org_id and f.aircraft_id = a.id and f.departed_at >= since
    where a.org_id = dbx_aviation.current_org_id()
    group by a.id, a.registration
    order by a.registration
$$;

revoke all on function dbx_bench.fleet_stats(timestamptz) from public;
grant execute on function dbx_bench.fleet_stats(timestamptz) to dbx_gateway;
