-- Analytics: the aircraft limits helper, the daily fleet statistics
-- materialized view, and the one function through which the gateway reads it.
--
-- Materialized views do not apply row-level security, so the gateway role gets
-- no privilege on the view at all. It reads it only through
-- dbx_analytics.daily_fleet_stats_of_org, a SECURITY DEFINER function with a
-- pinned search_path that returns the rows of the transaction's own org
-- (dbx_aviation.current_org_id(); none when unset) and nothing else.

-- A numeric aircraft spec (specs ->> key) or the fallback when the key is
-- missing or not a JSON number. Inlinable SQL, no privileges of its own.
create function dbx_analytics.spec_number(specs jsonb, key text, fallback double precision)
    returns double precision
    language sql immutable parallel safe
    set search_path = pg_catalog
as $$
    select case when jsonb_typeof(specs -> key) = 'number'
                then (specs ->> key)::double precision
                else fallback end
$$;
revoke all on function dbx_analytics.spec_number(jsonb, text, double precision) from public;
grant execute on function dbx_analytics.spec_number(jsonb, text, double precision) to dbx_gateway;

-- Per org and UTC day. Flights count by departure day; flight hours are those
-- of flights that departed that day and have arrived. Telemetry figures count
-- the samples recorded that day; an exceedance is a sample above any of the
-- aircraft's limits (service_ceiling_m default 12500, max_speed_ms default 180,
-- max_engine_temp_c default 900), counted once per sample. refreshed_at is the
-- time of the refresh that produced the row (every row of one refresh shares it).
create materialized view dbx_analytics.daily_fleet_stats as
with flight_days as (
    select f.org_id,
           (f.departed_at at time zone 'UTC')::date as day,
           count(*) as flights,
           coalesce(sum(extract(epoch from (f.arrived_at - f.departed_at)) / 3600.0)
                    filter (where f.arrived_at is not null), 0)::double precision as flight_hours,
           count(distinct f.aircraft_id) as active_aircraft
    from dbx_aviation.flights f
    where f.status <> 'cancelled'
    group by 1, 2
),
telemetry_days as (
    select t.org_id,
           (t.recorded_at at time zone 'UTC')::date as day,
           max(t.altitude_m) as max_altitude_m,
           avg(t.airspeed_ms) as avg_airspeed_ms,
           count(*) filter (
               where t.altitude_m > dbx_analytics.spec_number(a.specs, 'service_ceiling_m', 12500)
                  or t.airspeed_ms > dbx_analytics.spec_number(a.specs, 'max_speed_ms', 180)
                  or t.engine_temp_c > dbx_analytics.spec_number(a.specs, 'max_engine_temp_c', 900)
           ) as exceedances
    from dbx_aviation.flight_telemetry t
    join dbx_aviation.aircraft a on a.org_id = t.org_id and a.id = t.aircraft_id
    group by 1, 2
)
select coalesce(fd.org_id, td.org_id) as org_id,
       coalesce(fd.day, td.day) as day,
       coalesce(fd.flights, 0) as flights,
       coalesce(fd.flight_hours, 0) as flight_hours,
       coalesce(fd.active_aircraft, 0) as active_aircraft,
       td.max_altitude_m,
       td.avg_airspeed_ms,
       coalesce(td.exceedances, 0) as exceedances,
       now() as refreshed_at
from flight_days fd
full join telemetry_days td on td.org_id = fd.org_id and td.day = fd.day
with data;

-- Unique, so `refresh materialized view concurrently` works (dbx-gateway maintain).
create unique index daily_fleet_stats_org_day_idx on dbx_analytics.daily_fleet_stats (org_id, day);
revoke all on dbx_analytics.daily_fleet_stats from public;

create function dbx_analytics.daily_fleet_stats_of_org(org uuid, from_day date, to_day date)
    returns table (
        day date,
        flights bigint,
        flight_hours double precision,
        active_aircraft bigint,
        max_altitude_m double precision,
        avg_airspeed_ms double precision,
        exceedances bigint,
        refreshed_at timestamptz
    )
    language sql stable security definer
    set search_path = pg_catalog
as $$
    -- The caller names its org and it must be the transaction's: a mismatch,
    -- or an unset org, returns nothing.
    select s.day, s.flights, s.flight_hours, s.active_aircraft, s.max_altitude_m,
           s.avg_airspeed_ms, s.exceedances, s.refreshed_at
    from dbx_analytics.daily_fleet_stats s
    where s.org_id = org
      and s.org_id = dbx_aviation.current_org_id()
      and s.day between from_day and to_day
    order by s.day
$$;
revoke all on function dbx_analytics.daily_fleet_stats_of_org(uuid, date, date) from public;
grant execute on function dbx_analytics.daily_fleet_stats_of_org(uuid, date, date) to dbx_gateway;
