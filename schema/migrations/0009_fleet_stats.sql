-- Fleet flight statistics since a time: per aircraft of the org, the flights
-- that departed at or after `since` (any status), how many of them completed,
-- their flight hours (arrived - departed, flights not yet arrived add none;
-- rounded to 0.01 h) and the latest departure among them (null when none).
-- Aircraft without such flights are listed with zeros.
--
-- SECURITY INVOKER and inlinable (one stable SQL select, no SET clause): the
-- caller's row-level security applies, and the planner folds the body into the
-- calling statement. The caller names its org; row-level security keeps it to
-- the transaction's own org in any case.
create function dbx_analytics.fleet_stats(org uuid, since timestamptz)
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
    select a.id, a.registration,
           count(f.id),
           count(f.id) filter (where f.status = 'completed'),
           round(coalesce(sum(extract(epoch from f.arrived_at - f.departed_at)), 0) / 3600.0, 2)
               ::double precision,
           max(f.departed_at)
    from dbx_aviation.aircraft a
    left join dbx_aviation.flights f
           on f.org_id = a.org_id and f.aircraft_id = a.id and f.departed_at >= since
    where a.org_id = org
    group by a.id, a.registration
    order by a.registration
$$;
revoke all on function dbx_analytics.fleet_stats(uuid, timestamptz) from public;
grant execute on function dbx_analytics.fleet_stats(uuid, timestamptz) to dbx_gateway;
