"""Waiting for a condition with a deadline instead of a fixed sleep: a test
polls until what it needs is true, and fails saying what it waited for.
Also: until every running replica has replayed the primary's WAL."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg


async def eventually(
    check: Callable[[], Awaitable[Any] | Any],
    timeout_s: float = 10.0,
    what: str = "the condition",
    period_s: float = 0.02,
) -> Any:
    """Polls ``check`` (sync or async) until it returns a truthy value, and
    returns that value; raises ``AssertionError`` naming ``what`` and the
    last value seen after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s (last: {value!r})")
        await asyncio.sleep(period_s)


def eventually_sync(
    check: Callable[[], Any],
    timeout_s: float = 10.0,
    what: str = "the condition",
    period_s: float = 0.02,
) -> Any:
    """``eventually`` for code outside an event loop (a subprocess starting,
    a browser page, an exporter thread)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s (last: {value!r})")
        time.sleep(period_s)


async def wait_replicated(stack: dict[str, Any], timeout_s: float = 10) -> None:
    """Until every running replica has replayed the primary's current WAL."""
    nodes = stack["nodes"]
    primary = next(n for n in nodes if n["role"] == "primary")
    conn = await asyncpg.connect(primary["admin_dsn"])
    try:
        target = await conn.fetchval("select pg_current_wal_lsn()")
    finally:
        await conn.close()
    deadline = time.monotonic() + timeout_s
    for n in nodes:
        if n["role"] != "replica" or n["state"] != "running":
            continue
        try:
            rc = await asyncpg.connect(n["admin_dsn"], timeout=2)
        except (OSError, asyncpg.PostgresError):
            continue
        try:
            while time.monotonic() < deadline:
                if await rc.fetchval("select pg_last_wal_replay_lsn() >= $1", target):
                    break
                await asyncio.sleep(0.02)
        finally:
            await rc.close()
