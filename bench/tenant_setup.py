"""Does opening a tenant transaction in one round trip pay?

Compares, side by side in one run, a point lookup in a tenant transaction:
- ``separate``: ``BEGIN`` (asyncpg transaction), then
  ``select set_config(k, v, true) from json_each_text($1::json)`` (prepared),
  then the lookup, then ``COMMIT``: 4 round trips;
- ``combined``: ``BEGIN; SELECT set_config(...)...`` as one simple-protocol
  message (what ``gateway.db.Database`` does), the lookup, ``COMMIT``: 3.

Usage: ``.venv/bin/python -m bench.tenant_setup [--seconds 5] [--tasks 32]``
(against the local stack, through PgBouncer's session-mode ``dbx``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import asyncpg

from gateway.config import Settings
from gateway.db.transaction import setup_sql


class _Tenant:
    def __init__(self, org_id: uuid.UUID) -> None:
        self.org_id = org_id
        self.subject = "bench"


LOOKUP = "select id from dbx_aviation.organizations where id = $1"


async def separate(conn: asyncpg.Connection, t: _Tenant) -> None:
    async with conn.transaction():
        await conn.fetchval(
            "select count(set_config(key, value, true)) from json_each_text($1::json)",
            json.dumps(
                {"dbx.org_id": str(t.org_id), "dbx.user_id": t.subject, "statement_timeout": "5000"}
            ),
        )
        await conn.fetchval(LOOKUP, t.org_id)


async def combined(conn: asyncpg.Connection, t: _Tenant) -> None:
    await conn.execute(setup_sql(t, 5000, 10_000, True, ""))
    try:
        await conn.fetchval(LOOKUP, t.org_id)
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def measure(pool: asyncpg.Pool, fn, t: _Tenant, seconds: float, tasks: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with pool.acquire() as conn:
                await fn(conn, t)
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done / (time.perf_counter() - t0)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--tasks", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    settings = Settings.from_env()
    owner = await asyncpg.connect(settings.owner_dsn)
    org = await owner.fetchval("select id from dbx_aviation.organizations limit 1")
    await owner.close()
    if org is None:
        raise SystemExit("no organization: run `make run` or `dbx-gateway seed` first")
    t = _Tenant(org)
    pool = await asyncpg.create_pool(settings.primary_dsn, min_size=8, max_size=8)
    results: dict[str, list[float]] = {"separate": [], "combined": []}
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        for name, fn in (("separate", separate), ("combined", combined)):
            results[name].append(await measure(pool, fn, t, args.seconds, args.tasks))
    await pool.close()
    sep = max(results["separate"])
    com = max(results["combined"])
    print(f"separate: {sep:,.0f} tx/s   combined: {com:,.0f} tx/s   ratio {com / sep:.2f}x")
    print("rounds:", {k: [round(v) for v in vs] for k, vs in results.items()})


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
