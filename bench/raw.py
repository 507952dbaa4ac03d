"""The ceiling: the same SQL through asyncpg directly, each statement in a
tenant transaction like the servers' (``BEGIN`` and both ``set_config`` in
one simple-protocol message, the prepared statement, ``COMMIT``), with N
concurrent tasks on a pool, measured in-process (ops/s, p50, p99, CPU per
operation by component, this process being the client).

Must not: write anything.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from bench.cpu import CpuMeter
from bench.load import Measurement

SqlGen = Callable[[], tuple[str, tuple[Any, ...]]]


def _begin(org_id: uuid.UUID) -> str:
    # a UUID's text is a safe literal; one message saves a round trip
    return (
        f"BEGIN; select set_config('dbx.org_id', '{org_id}', true),"
        " set_config('dbx.user_id', 'bench', true)"
    )


async def _one(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    begin: str,
    sql: str,
    args: tuple[Any, ...],
) -> None:
    await conn.execute(begin)
    try:
        await conn.fetch(sql, *args)
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def measure(
    dsn: str,
    org_id: uuid.UUID,
    gen: SqlGen,
    *,
    seconds: float,
    warmup_s: float,
    tasks: int,
    pool_size: int,
) -> Measurement:
    begin = _begin(org_id)
    meter = CpuMeter([], client_is_self=True)
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    try:
        if warmup_s > 0:
            await _run(pool, begin, gen, warmup_s, tasks, [], [0])
        latencies: list[float] = []
        errors = [0]
        meter.start()
        t0 = time.perf_counter()
        await _run(pool, begin, gen, seconds, tasks, latencies, errors)
        elapsed = time.perf_counter() - t0
        cpu = meter.stop(len(latencies))
    finally:
        await pool.close()
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return Measurement(
        rate=len(latencies) / elapsed,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        requests=len(latencies) + errors[0],
        errors=errors[0],
        cpu_us=cpu,
        seconds=elapsed,
    )


async def _run(
    pool: asyncpg.Pool,
    begin: str,
    gen: SqlGen,
    seconds: float,
    tasks: int,
    latencies: list[float],
    errors: list[int],
) -> None:
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            sql, args = gen()
            t = time.perf_counter()
            try:
                async with pool.acquire() as conn:
                    await _one(conn, begin, sql, args)
            except (asyncpg.PostgresError, OSError):
                errors[0] += 1
                continue
            latencies.append(time.perf_counter() - t)

    await asyncio.gather(*(worker() for _ in range(tasks)))
