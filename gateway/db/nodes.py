"""A database node as the gateway sees it: its pool, its health as last
probed, and its circuit breaker.

Must not: know table names, or decide which node serves a request (router.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from gateway.db.pools import create_pool, detect_transaction_pooling, redact_dsn, split_dsn

Role = Literal["primary", "replica"]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class Health:
    """What the last probe saw."""

    reachable: bool = False
    in_recovery: bool | None = None
    wal_lsn: int | None = None  # replay LSN on a replica, current LSN on the primary
    lag_s: float | None = None
    lag_bytes: int | None = None
    replay_paused: bool = False
    probed_at: float = 0.0  # monotonic
    error: str | None = None


@dataclass
class Breaker:
    """Opens on a connection-level failure; after ``cooldown_s`` one
    successful probe closes it again."""

    cooldown_s: float
    state: BreakerState = "closed"
    opened_at: float = 0.0
    failures: int = 0

    def trip(self) -> None:
        if self.state != "open":
            self.opened_at = time.monotonic()
        self.state = "open"
        self.failures += 1

    def may_probe_close(self) -> bool:
        return self.state == "closed" or time.monotonic() - self.opened_at >= self.cooldown_s

    def cooldown_left_s(self) -> float:
        if self.state == "closed":
            return 0.0
        return max(0.0, self.cooldown_s - (time.monotonic() - self.opened_at))

    def close(self) -> None:
        self.state = "closed"
        self.failures = 0


@dataclass
class Node:
    name: str
    role: Role
    dsn: str = field(repr=False)  # carries a password: never in a repr or a test report
    pool_min_size: int
    pool_max_size: int
    statement_cache_setting: str  # auto | on | off
    connect_timeout_s: float
    breaker: Breaker
    health: Health = field(default_factory=Health)
    pool: asyncpg.Pool | None = None
    statement_cache: bool | None = None
    address: str | None = None  # the node's own host:port, seen from inside
    in_use: int = 0
    pool_waiting: int = 0
    excluded_reason: str | None = None  # e.g. "replica not in recovery"
    # analytics transactions this process may run on the node at once (None:
    # no limit) and how many wait for one of those slots
    analytics_slots: asyncio.Semaphore | None = None
    analytics_waiting: int = 0
    # short analytics (DBX_ANALYTICS_UNSLOTTED_MAX) at once, instead of a slot
    analytics_lane: asyncio.Semaphore | None = None

    @property
    def connect_dsn(self) -> str:
        return split_dsn(self.dsn)[0]

    @property
    def public_dsn(self) -> str:
        return redact_dsn(self.connect_dsn)

    @property
    def usable(self) -> bool:
        return (
            self.pool is not None
            and self.health.reachable
            and self.breaker.state == "closed"
            and self.excluded_reason is None
        )

    async def ensure_pool(self) -> asyncpg.Pool:
        """Create the pool on first contact, after finding out whether the
        statement cache may be used on this DSN."""
        if self.pool is not None:
            return self.pool
        options = split_dsn(self.dsn)[1]
        setting = options.get("statement_cache", self.statement_cache_setting)
        if setting == "auto":
            cache = not await detect_transaction_pooling(
                self.connect_dsn, timeout=self.connect_timeout_s
            )
        else:
            cache = setting == "on"
        self.statement_cache = cache
        self.pool = await create_pool(
            self.connect_dsn,
            min_size=self.pool_min_size,
            max_size=self.pool_max_size,
            statement_cache=cache,
            connect_timeout=self.connect_timeout_s,
        )
        return self.pool

    async def disable_statement_cache(self) -> None:
        """A prepared-statement error proved this DSN is transaction-pooled:
        rebuild the pool without the cache."""
        if self.statement_cache is False:
            return
        old, self.pool = self.pool, None
        self.statement_cache_setting = "off"
        if old is not None:
            old.terminate()
        self.statement_cache = False
        self.pool = await create_pool(
            self.connect_dsn,
            min_size=0,
            max_size=self.pool_max_size,
            statement_cache=False,
            connect_timeout=self.connect_timeout_s,
        )

    def describe(self) -> dict[str, object]:
        """For /readyz: no passwords."""
        h = self.health
        reason = self.excluded_reason or h.error
        if self.excluded_reason:
            state = "excluded"
        elif not h.reachable:
            state = "down"
            if reason is None and self.breaker.state == "closed":
                reason = "not probed yet"
            elif reason is None:  # answering again, but the breaker has not closed yet
                reason = (
                    f"circuit breaker open after {self.breaker.failures} failed probe(s);"
                    f" a good probe may close it in {self.breaker.cooldown_left_s():.1f} s"
                )
        else:
            state = "up"
        return {
            "name": self.name,
            "role": self.role,
            "state": state,
            "reason": reason,
            "dsn": self.public_dsn,
            "address": self.address,
            "in_recovery": h.in_recovery,
            "lag_s": None if h.lag_s is None else round(h.lag_s, 3),
            "lag_bytes": h.lag_bytes,
            "replay_paused": h.replay_paused,
            "breaker": self.breaker.state,
            "statement_cache": self.statement_cache,
            "pool": self.pool_stats(),
        }

    def pool_stats(self) -> dict[str, int]:
        analytics = self.analytics_waiting  # for an analytics slot (DBX_ANALYTICS_CONCURRENCY)
        if self.pool is None:
            return {"size": 0, "in_use": 0, "idle": 0, "waiting": 0, "analytics_waiting": analytics}
        size = self.pool.get_size()
        idle = self.pool.get_idle_size()
        return {
            "size": size,
            "in_use": size - idle,
            "idle": idle,
            "waiting": self.pool_waiting,
            "analytics_waiting": analytics,
        }

    async def close(self) -> None:
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=5)
            except Exception:
                self.pool.terminate()
            self.pool = None
