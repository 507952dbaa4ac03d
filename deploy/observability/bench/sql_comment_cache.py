"""Measure what a per-statement ``traceparent`` comment costs with asyncpg's
statement cache on (PgBouncer session mode).

Each operation is a tenant-style transaction: a simple-protocol set-up
statement (``BEGIN; SELECT set_config(...)``, always carrying the comment),
one point lookup, ``COMMIT``. Variant ``setup``: the lookup text is constant
(cache hit). Variant ``statement``: the lookup also carries the unique
comment, so every lookup is a fresh Parse/Describe and a cache eviction.
Rounds alternate so drift on a shared machine hits both alike.

Usage: python deploy/observability/bench/sql_comment_cache.py DSN [seconds] [rounds]
(``DSN``: the stack's ``gateway_primary``; ``deploy/local/stack status --json``).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import uuid

import asyncpg

TASKS = 32
POOL = 8
LOOKUP = "select id, registration from dbx_aviation.aircraft where org_id = $1 and id = $2"


def traceparent() -> str:
    return f" /*traceparent='00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01'*/"


async def run(pool: asyncpg.Pool, org: uuid.UUID, scope: str, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            comment = traceparent()
            async with pool.acquire() as conn:
                await conn.execute(
                    "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;"
                    f"SELECT set_config('dbx.org_id', '{org}', true){comment}"
                )
                sql = LOOKUP + comment if scope == "statement" else LOOKUP
                await conn.fetchrow(sql, org, uuid.uuid4())
                await conn.execute("COMMIT")
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return done / (time.perf_counter() - t0)


async def main(dsn: str, seconds: float, rounds: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL)
    org = uuid.uuid4()  # no rows: the lookup cost is parse/plan/round trips, not data
    try:
        await run(pool, org, "setup", 1.0)  # warm up
        results: dict[str, list[float]] = {"setup": [], "statement": []}
        for _ in range(rounds):
            for scope in ("setup", "statement"):
                results[scope].append(await run(pool, org, scope, seconds))
        for scope, rates in results.items():
            print(
                f"{scope:>9}: "
                + " ".join(f"{r:7.0f}" for r in rates)
                + f"  mean {sum(rates) / len(rates):7.0f}/s"
            )
        ratio = sum(results["statement"]) / sum(results["setup"])
        print(f"per-statement comment / setup-only comment throughput: {ratio:.2f}")
    finally:
        await pool.close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(
        main(
            sys.argv[1],
            float(sys.argv[2]) if len(sys.argv) > 2 else 5.0,
            int(sys.argv[3]) if len(sys.argv) > 3 else 3,
        )
    )
