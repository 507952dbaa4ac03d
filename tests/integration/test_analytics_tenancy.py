"""Tenant safety of analytics: with org A's session no figure reflects org
B's rows (B has wild values in the same time windows), and the daily
statistics view is reachable only through its definer function, which
answers for the transaction's own org and nothing else.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from gateway.data import analytics as fleet_sql
from gateway.data import analytics_quality as quality_sql
from gateway.data import analytics_telemetry as tel
from gateway.db import Database
from gateway.errors import NotFound
from tests.support.analytics_data import Fleet, db, fleets, session
from tests.support.analytics_expected import daily, fleet_stats, risk, stats

__all__ = ["db", "fleets"]  # fixtures


async def test_no_analytics_field_reflects_another_org(
    db: Database, fleets: dict[str, Fleet]
) -> None:
    a, b = fleets["a"], fleets["b"]
    sa = session(db, a)
    window = {"start": a.as_of - timedelta(days=60), "end": a.as_of}
    # fleet scope: exactly A's own figures, though B's values are all extreme
    for metric in tel.METRIC_COLUMNS:
        got = await sa.analytics(
            tel.telemetry_stats, tel.TelemetryScope(a.org_id, **window), metric
        )
        want = stats(a, metric, flight_id=None, aircraft_id=None, **window)
        assert got.count == want["count"] and got.max == want["max"], metric
    # B's aircraft and flights, named explicitly from A's session: nothing
    for scope in (
        tel.TelemetryScope(a.org_id, aircraft_id=b.aircraft[0]["id"], **window),
        tel.TelemetryScope(a.org_id, flight_id=b.flights[0]["id"]),
    ):
        got = await sa.analytics(tel.telemetry_stats, scope, "ALTITUDE_M")
        assert got.count == 0
        assert await sa.analytics(tel.telemetry_series, scope, "ALTITUDE_M", 3600, 2) == []
    # even when the data layer is handed B's org id, A's transaction sees none of B
    forged = tel.TelemetryScope(b.org_id, **window)
    assert (await sa.analytics(tel.telemetry_stats, forged, "ALTITUDE_M")).count == 0
    assert await sa.analytics(fleet_sql.fleet_risk_profile, b.org_id, a.as_of, 500, None) == []
    with pytest.raises(NotFound):
        await sa.analytics(quality_sql.data_quality, a.org_id, b.flights[0]["id"])

    profile = await sa.analytics(fleet_sql.fleet_risk_profile, a.org_id, a.as_of, 500, None)
    want_risk = risk(a)
    assert {r.aircraft_id for r in profile} == set(want_risk)
    for r in profile:
        assert abs(r.score - want_risk[r.aircraft_id]["score"]) <= 0.051
    forecast = await sa.analytics(fleet_sql.maintenance_forecast, a.org_id, a.as_of, 500)
    assert {f.aircraft_id for f in forecast} == {x["id"] for x in a.aircraft}

    start, end = (a.as_of - timedelta(days=60)).date(), a.as_of.date()
    days = await sa.analytics(fleet_sql.fleet_daily_stats, a.org_id, start, end)
    want_days = daily(a, start, end)
    assert [d.day for d in days] == sorted(want_days)
    assert all(d.max_altitude_m is None or d.max_altitude_m < 19_000 for d in days)
    assert sum(d.exceedances for d in days) == sum(w["exc"] for w in want_days.values())
    assert math.isclose(
        sum(d.flight_hours for d in days), sum(w["hours"] for w in want_days.values())
    )
    since = a.as_of - timedelta(days=60)
    assert await sa.analytics(fleet_sql.fleet_stats, b.org_id, since) == []
    own = await sa.analytics(fleet_sql.fleet_stats, a.org_id, since)
    assert [g.aircraft_id for g in own] == [w["id"] for w in fleet_stats(a, since)]
    assert sum(g.flights for g in own) == len(a.flights)
    # B's session sees its own wild data, so the comparison above could fail
    sb = session(db, b)
    wild = await sb.analytics(
        tel.telemetry_stats, tel.TelemetryScope(b.org_id, **window), "ALTITUDE_M"
    )
    assert wild.count > 0 and (wild.min or 0) >= 19_000


async def gateway_conn(stack: dict[str, Any]) -> asyncpg.Connection:
    # the gateway role through PgBouncer, as the gateway itself connects
    return await asyncpg.connect(stack["dsns"]["gateway_primary"])


async def test_gateway_role_cannot_read_the_view(stack: dict[str, Any]) -> None:
    conn = await gateway_conn(stack)
    try:
        for sql in (
            "select count(*) from dbx_analytics.daily_fleet_stats",
            "select * from dbx_analytics.daily_fleet_stats limit 1",
            "table dbx_analytics.daily_fleet_stats",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(sql)
        # nothing in dbx_analytics is a relation the gateway may select from
        granted = await conn.fetchval(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'dbx_analytics'"
            " and has_table_privilege('dbx_gateway', c.oid, 'select')"
        )
        assert granted == 0
        # definer functions there have a pinned search_path and no PUBLIC execute
        loose = await conn.fetchval(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'dbx_analytics' and p.prosecdef and (p.proconfig is null"
            " or not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')"
            " or has_function_privilege('public', p.oid, 'execute'))"
        )
        assert loose == 0
    finally:
        await conn.close()


async def test_definer_function_answers_only_for_the_transaction_org(
    stack: dict[str, Any], fleets: dict[str, Fleet]
) -> None:
    a, b = fleets["a"], fleets["b"]
    start, end = (a.as_of - timedelta(days=60)).date(), a.as_of.date()
    sql = "select count(*) from dbx_analytics.daily_fleet_stats_of_org($1, $2, $3)"
    conn = await gateway_conn(stack)
    try:
        async with conn.transaction():
            await conn.execute("select set_config('dbx.org_id', $1, true)", str(a.org_id))
            own = await conn.fetchval(sql, a.org_id, start, end)
            other = await conn.fetchval(sql, b.org_id, start, end)
        assert own == len(daily(a, start, end)) > 0
        assert other == 0
        # no org set: nothing, for any org asked
        async with conn.transaction():
            assert await conn.fetchval(sql, a.org_id, start, end) == 0
            assert await conn.fetchval(sql, b.org_id, start, end) == 0
        async with conn.transaction():
            await conn.execute("select set_config('dbx.org_id', $1, true)", str(b.org_id))
            assert await conn.fetchval(sql, b.org_id, start, end) == len(daily(b, start, end)) > 0
            assert await conn.fetchval(sql, a.org_id, start, end) == 0
    finally:
        await conn.close()
