-- Fleet flight statistics since a time: per aircraft of the org, the flights
-- that departed at or after `since` (any status), how many of them completed,
-- their flight hours (arrived - departed, flights not yet arrived add none;
-- rounded to 0.01 h) and the latest departure among them (null when none).
-- Aircraft without such flights are listed with zeros.
--
-- SECURITY INVOKER and inlinable (one stable SQL select, no SET clause): the
-- caller's row-level security applies, and the planner folds the body into the
-- calling statement.
--
-- The caller names its org and it must be the transaction's: a mismatch, or an
-- unset org, returns nothing. Rows are chosen by dbx_aviation.current_org_id(),
-- the very expression of the row-level security policies, not by the argument.
-- The planner estimates the stable function with the org of the transaction
-- that makes the plan, also for a prepared statement's cached generic plan;
-- `a.org_id = org` beside the policy's clause reads as an unknown, average org.
-- For an org of 1000 aircraft that estimate chose a merge join over 14k sorted
-- flights, at about twice the cost of the hash join.
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
    where a.org_id = dbx_aviation.current_org_id()
      and org = dbx_aviation.current_org_id()
    group by a.id, a.registration
    order by a.registration
$$;
revoke all on function dbx_analytics.fleet_stats(uuid, timestamptz) from public;
grant execute on function dbx_analytics.fleet_stats(uuid, timestamptz) to dbx_gateway;
