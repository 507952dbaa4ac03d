-- JSON text of the float8 values that planned statements (gateway.data.planned
-- float_text) do not write inline: magnitudes under 1e-4 or from 1e15, and
-- non-finite ones. It is what float_text wrote inline before, moved here to
-- make the statements' expressions smaller: PostgreSQL sets up every
-- expression of a statement on each execution, and the inline form of these
-- rare branches made a one-row analytics statement cost about 10 us of CPU
-- more per float field, whether a branch ran or not.
--
-- Same output as orjson writes the Python float: digits through numeric for
-- decimal exponents -5..15, '1.5e-7' style below; from 1e16, and for NaN and
-- the infinities, it fails (the planner then lets the resolvers answer).
-- `set search_path` keeps it from being inlined, which would bring the
-- branches back into the caller's expression. Stable: float8 output depends on
-- extra_float_digits, which the planned statements check is above 0.
create function dbx_analytics.json_float_rare(v double precision) returns text
    language sql stable parallel safe
    set search_path = pg_catalog
as $$
    select case
        when v is null then 'null'
        when abs(v) >= 1e16 then ('not planned: ' || v::text)::int::text
        when abs(v) >= 1e-5 then
            case when v = trunc(v) then v::text::numeric::text || '.0'
                 else v::text::numeric::text end
        when v = 0 then
            case when v = trunc(v) then v::text || '.0' else v::text end
        else regexp_replace(v::text, 'e([+-])0+(?=[0-9])', 'e\1')
    end
$$;
revoke all on function dbx_analytics.json_float_rare(double precision) from public;
grant execute on function dbx_analytics.json_float_rare(double precision) to dbx_gateway;
