-- Q3 of the benchmark: the fleet statistics SQL function, created by
-- bench/run.py as the owner role (idempotent). It is the gateway's own
-- dbx_analytics.fleet_stats (migration 0009) for the transaction's org, under
-- the one-argument name PostGraphile exposes as `dbxBenchFleetStats`. Both are
-- SECURITY INVOKER and inlinable, so DBX, PostGraphile and raw asyncpg run the
-- same statement and row-level security decides what it sees. `since` varies
-- per request so no cache can answer it.
create schema if not exists dbx_bench;
grant usage on schema dbx_bench to dbx_gateway;

drop function if exists dbx_bench.fleet_stats(timestamptz);
create function dbx_bench.fleet_stats(since timestamptz)
returns table (
    aircraft_id uuid,
    registration text,
    flights bigint,
    completed bigint,
    flight_hours double precision,
    last_departed_at timestamptz
)
language sql stable security invoker parallel safe
as $$
    select s.aircraft_id, s.registration, s.flights, s.completed, s.flight_hours,
           s.last_departed_at
    from dbx_analytics.fleet_stats(dbx_aviation.current_org_id(), since) s
$$;

revoke all on function dbx_bench.fleet_stats(timestamptz) from public;
grant execute on function dbx_bench.fleet_stats(timestamptz) to dbx_gateway;
