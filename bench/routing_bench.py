"""Read throughput with 0, 1 and 2 replicas, and what routing adds.

Side by side in one run (interleaved rounds, best round reported):
- ``direct``: an asyncpg pool on the primary (through PgBouncer), the same
  one-round-trip tenant transaction, no router, no health probe;
- ``routed-0``/``routed-1``/``routed-2``: ``gateway.db.Database`` with 0, 1
  or 2 replicas, intent ``read``.

Throughput uses 32 concurrent tasks; latency (p50/p99) one task at a time.
All nodes share this machine's cores, so more replicas cannot add CPU here:
the numbers show routing's cost, not a scale-out.

Usage: ``.venv/bin/python -m bench.routing_bench [--seconds 4] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db import Database
from gateway.db.connection import TenantConnection
from gateway.db.transaction import setup_sql

LOOKUP = "select id, registration from dbx_aviation.aircraft where org_id = $1 limit 1"

Op = Callable[[], Awaitable[object]]


async def lookup(conn: TenantConnection, org_id: uuid.UUID) -> object:
    return await conn.fetchrow(LOOKUP, org_id)


async def throughput(op: Op, seconds: float, tasks: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await op()
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done / (time.perf_counter() - t0)


async def latency(op: Op, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await op()
        samples.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=32)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    base = Settings.from_env()
    owner = await asyncpg.connect(base.owner_dsn)
    org = await owner.fetchval("select org_id from dbx_aviation.aircraft limit 1")
    await owner.close()
    if org is None:
        raise SystemExit("no aircraft: run `make run` (or `dbx-gateway seed`) first")
    who = Principal(org_id=org, subject="bench", roles=frozenset({"viewer"}))

    pool = await asyncpg.create_pool(base.primary_dsn, min_size=8, max_size=8)
    setup = setup_sql(who, base.read_timeout_ms, base.idle_in_transaction_timeout_ms, True, "")

    async def direct() -> object:
        async with pool.acquire() as conn:
            await conn.execute(setup)
            row = await conn.fetchrow(LOOKUP, org)
            await conn.execute("COMMIT")
            return row

    dbs: dict[str, Database] = {}
    ops: dict[str, Op] = {"direct": direct}
    for n in (0, 1, 2):
        s = dataclasses.replace(base, replica_dsns=base.replica_dsns[:n])
        db = Database(s)
        await db.start()
        dbs[f"routed-{n}"] = db
        session = db.session(who)

        def make(session=session) -> Op:  # noqa: ANN001 - bind per loop turn
            return lambda: session.read(lookup, org)

        ops[f"routed-{n}"] = make()

    tput: dict[str, list[float]] = {k: [] for k in ops}
    lat: dict[str, list[tuple[float, float]]] = {k: [] for k in ops}
    for _ in range(args.rounds):
        for name, op in ops.items():
            tput[name].append(await throughput(op, args.seconds, args.tasks))
            lat[name].append(await latency(op, args.samples))
    for db in dbs.values():
        await db.close()
    await pool.close()

    ref = max(tput["direct"])
    ref_p50 = min(p for p, _ in lat["direct"])
    ref_p99 = min(p for _, p in lat["direct"])
    print(
        "| path | reads/s (32 tasks) | vs direct | p50 ms | p99 ms "
        "| p50 vs direct | p99 vs direct |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in ops:
        best = max(tput[name])
        p50 = min(p for p, _ in lat[name])
        p99 = min(p for _, p in lat[name])
        print(
            f"| {name} | {best:,.0f} | {best / ref:.2f}x | {p50:.3f} | {p99:.3f} "
            f"| {p50 / ref_p50:.2f}x | {p99 / ref_p99:.2f}x |"
        )


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
