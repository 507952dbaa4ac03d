"""Analytics latency: each ``analytics`` field through the served gateway
(HTTP, GraphQL, tenant transaction on a replica) against the same SQL run
directly with asyncpg on a replica (one ``BEGIN``, the org setting, the
statement, ``COMMIT``), p50/p99 and their ratio, in one run.

The data lives in a scratch database (``dbx_bench_<hex>``, created by the
stack superuser, migrated, seeded with ``gateway.admin.seed``), so the shared
``dbx`` database is untouched; it is dropped at the end unless ``--keep``.
The gateway is started as a uvicorn subprocess whose DSNs point straight at
the scratch database on the primary and the replicas (PgBouncer only serves
``dbx``).

    .venv/bin/python -m bench.analytics_bench --points 10000000 --iterations 30
    .venv/bin/python -m bench.analytics_bench --db dbx_bench_1a2b3c4d --keep   # reuse

Not a test: not run by ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from gateway.admin.migrate import migrate
from gateway.admin.seed import SeedSize, seed
from gateway.auth import mint_token
from gateway.config import REPO_ROOT, Settings
from gateway.data import analytics as fleet_sql
from gateway.data import analytics_quality as quality_sql
from gateway.data import analytics_telemetry as tel
from gateway.data.analytics_telemetry import Query

ORGS, AIRCRAFT, POINTS_PER_FLIGHT = 3, 16, 700


def stack_status() -> dict[str, Any]:
    out = subprocess.run(
        [str(REPO_ROOT / "deploy" / "local" / "stack"), "status", "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def dsn_for(dsn: str, db: str, port: int | None = None) -> str:
    p = urlsplit(dsn)
    netloc = p.netloc if port is None else f"{p.netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}"
    return urlunsplit(p._replace(netloc=netloc, path=f"/{db}"))


async def prepare(stack: dict[str, Any], owner_dsn: str, db: str | None, points: int) -> str:
    if db is not None:
        return db
    db = f"dbx_bench_{secrets.token_hex(4)}"
    admin = next(n["admin_dsn"] for n in stack["nodes"] if n["role"] == "primary")
    sup = await asyncpg.connect(admin)
    try:
        await sup.execute(f'create database "{db}" owner dbx_owner')
    finally:
        await sup.close()
    owner = dsn_for(owner_dsn, db)
    await migrate(owner)
    flights = max(1, round(points / (ORGS * AIRCRAFT * POINTS_PER_FLIGHT * 0.95)))
    t0 = time.perf_counter()
    await seed(owner, SeedSize(orgs=ORGS, aircraft=AIRCRAFT, flights=flights,
                               points=POINTS_PER_FLIGHT))  # fmt: skip
    conn = await asyncpg.connect(owner)
    try:
        await conn.execute("analyze")
        await conn.execute("refresh materialized view dbx_analytics.daily_fleet_stats")
    finally:
        await conn.close()
    print(f"seeded {db} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return db


async def drop(stack: dict[str, Any], db: str) -> None:
    admin = next(n["admin_dsn"] for n in stack["nodes"] if n["role"] == "primary")
    sup = await asyncpg.connect(admin)
    try:
        await sup.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", db
        )
        await sup.execute(f'drop database if exists "{db}"')
    finally:
        await sup.close()


def serve(primary: str, replicas: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = dict(os.environ, DBX_PRIMARY_DSN=primary, DBX_REPLICA_DSNS=",".join(replicas))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
         "--log-level", "warning"],
        cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gateway did not start")


class Unavailable(RuntimeError):
    """No replica could serve (another suite's fault injection, or lag)."""


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    out: list[float] = []
    skipped = 0
    while len(out) < n + 1:  # the first run only warms (connection, statement caches)
        t0 = time.perf_counter()
        try:
            await call()
        except Unavailable:
            skipped += 1
            if skipped > 20:
                raise
            await asyncio.sleep(1)
            continue
        out.append((time.perf_counter() - t0) * 1000)
    if skipped:
        print(f"  {skipped} runs answered UNAVAILABLE and were repeated", file=sys.stderr)
    return out[1:]


async def connect_any(dsns: list[str], wait_s: float = 120) -> asyncpg.Connection:
    """The first replica that accepts a connection (one may be restarting)."""
    deadline = time.monotonic() + wait_s
    while True:
        for dsn in dsns:
            try:
                return await asyncpg.connect(dsn, timeout=2)
            except (OSError, asyncpg.PostgresError):
                continue
        if time.monotonic() > deadline:
            raise RuntimeError("no replica accepts connections")
        await asyncio.sleep(1)


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1] if len(xs) > 1 else xs[0]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--db", help="reuse this scratch database (already seeded)")
    ap.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    args = ap.parse_args()
    stack, settings = stack_status(), Settings.from_env()
    db = await prepare(stack, settings.owner_dsn, args.db, args.points)
    gw = stack["dsns"]["gateway_primary"]
    replica_ports = [n["port"] for n in stack["nodes"] if n["role"] == "replica"]
    replicas = [dsn_for(gw, db, p) for p in replica_ports]
    proc, url = serve(dsn_for(gw, db, 55432), replicas)
    try:
        owner = await asyncpg.connect(dsn_for(settings.owner_dsn, db))
        row = await owner.fetchrow(
            "select org_id, aircraft_id, max(recorded_at) as last, count(*) as n from"
            " dbx_aviation.flight_telemetry group by 1, 2 order by 4 desc limit 1"
        )
        total = await owner.fetchval("select count(*) from dbx_aviation.flight_telemetry")
        flight = await owner.fetchval(
            "select flight_id from dbx_aviation.flight_telemetry where aircraft_id = $1"
            " and recorded_at > $2 group by 1 order by count(*) desc limit 1",
            row["aircraft_id"], row["last"] - timedelta(days=10),
        )  # fmt: skip
        await owner.close()
        org, aircraft, now = row["org_id"], row["aircraft_id"], datetime.now(UTC)
        start = now - timedelta(days=30)
        fleet_scope = tel.TelemetryScope(org, start=start, end=now)
        ac_scope = tel.TelemetryScope(org, aircraft_id=aircraft, start=start, end=now)
        w = f'from: "{start.isoformat()}", to: "{now.isoformat()}"'
        cases: list[tuple[str, str, Query]] = [
            ("fleetRiskProfile", "fleetRiskProfile { score }", fleet_sql.risk_query(org, now)),
            ("maintenanceForecast", "maintenanceForecast { priority }",
             fleet_sql.forecast_query(org, now)),
            ("telemetryStats fleet 30d", f"telemetryStats(metric: ALTITUDE_M, {w}) {{ p99 }}",
             tel.stats_query(fleet_scope, "ALTITUDE_M")),
            ("telemetryStats aircraft 30d",
             f'telemetryStats(metric: ALTITUDE_M, aircraftId: "{aircraft}", {w}) {{ p99 }}',
             tel.stats_query(ac_scope, "ALTITUDE_M")),
            ("telemetrySeries aircraft 30d/1h ma5",
             f'telemetrySeries(metric: AIRSPEED_MS, bucketSeconds: 3600, aircraftId: "{aircraft}",'
             f" {w}, movingAverageWindow: 5) {{ avg movingAverage }}",
             tel.series_query(ac_scope, "AIRSPEED_MS", 3600, 5)),
            ("fleetDailyStats 120d",
             f'fleetDailyStats(from: "{(now - timedelta(days=120)).date()}", to: "{now.date()}")'
             " { flights }",
             fleet_sql.daily_stats_query(org, (now - timedelta(days=120)).date(), now.date())),
            ("fleetStats 30d", f'fleetStats(since: "{start.isoformat()}") {{ flightHours }}',
             fleet_sql.fleet_stats_query(org, start)),
            ("dataQuality", f'dataQuality(flightId: "{flight}") {{ score }}',
             quality_sql.quality_query(org, flight)),
        ]  # fmt: skip
        token = mint_token(settings, org_id=org, role="analyst", subject="bench")
        direct = await connect_any(replicas)
        results = []
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            for label, field, q in cases:

                async def via_gateway(field: str = field) -> None:
                    r = await client.post(
                        "/graphql",
                        json={"query": f"{{ analytics {{ {field} }} }}"},
                        headers={"authorization": f"Bearer {token}"},
                    )
                    body = r.json()
                    if "errors" in body:
                        codes = {e["extensions"]["code"] for e in body["errors"]}
                        raise (Unavailable if codes == {"UNAVAILABLE"} else RuntimeError)(
                            body["errors"]
                        )

                async def via_asyncpg(q: Query = q) -> None:
                    async with direct.transaction(readonly=True):
                        await direct.execute("select set_config('dbx.org_id', $1, true)", str(org))
                        await direct.fetch(q.sql, *q.args)

                d = await timed(args.iterations, via_asyncpg)
                g = await timed(args.iterations, via_gateway)
                results.append((label, d, g))
        await direct.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if not args.keep and args.db is None:
            await drop(stack, db)
    print(f"\nanalytics latency, {total:,} telemetry points, {args.iterations} runs each (ms)\n")
    print("| field | direct p50 | direct p99 | gateway p50 | gateway p99 | ratio p50 | ratio p99 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, d, g in results:
        d50, d99, g50, g99 = pct(d, 50), pct(d, 99), pct(g, 50), pct(g, 99)
        print(f"| {label} | {d50:.1f} | {d99:.1f} | {g50:.1f} | {g99:.1f} |"
              f" {g50 / d50:.2f} | {g99 / d99:.2f} |")  # fmt: skip
    if args.keep or args.db:
        print(f"\nscratch database kept: {db}")


if __name__ == "__main__":
    asyncio.run(main())
