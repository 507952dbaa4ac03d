"""``Database``: the facade the app holds for its lifetime. It owns the
nodes, their health probe and the router, starts and closes them, and hands
out per-request sessions; the work is done in one module per job:

- ``transaction.py``: the life of one tenant transaction on a node;
- ``retry.py``: which candidate runs it, and when it runs again;
- ``admission.py``: analytics slots, short lanes, per-request turns, and the
  race against a client that left;
- ``tokens.py``: consistency tokens;
- ``session.py``: ``DbSession``, one request's view.

Must not: know table names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Concatenate, ParamSpec, TypeVar

from gateway.config import Settings
from gateway.db.admission import Admission, ClientGone
from gateway.db.connection import StatementObserver, TenantConnection
from gateway.db.costs import RecentRuns
from gateway.db.health import HealthProbe
from gateway.db.nodes import Breaker, Node
from gateway.db.retry import Runner
from gateway.db.router import Intent, Route, Router
from gateway.db.session import DbSession
from gateway.db.tokens import TokenSigner
from gateway.db.transaction import TenantContext, Transactions

log = logging.getLogger("dbx.db")

# A replica left out for lag is probed again before a request is refused
# for it, unless its reading is younger than this.
RECHECK_LAG_S = 0.1

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["Database", "DbSession", "Intent", "TenantContext"]


class Database:
    """All nodes of one deployment, for the app's lifetime."""

    def __init__(self, settings: Settings, *, observer: StatementObserver | None = None) -> None:
        self.settings = settings

        def node(name: str, role: str, dsn: str) -> Node:
            return Node(
                name=name,
                role=role,  # type: ignore[arg-type]
                dsn=dsn,
                pool_min_size=settings.pool_min_size,
                pool_max_size=settings.pool_max_size,
                statement_cache_setting=settings.statement_cache,
                connect_timeout_s=settings.connect_timeout_s,
                breaker=Breaker(cooldown_s=settings.breaker_cooldown_s),
            )

        self.nodes = [node("primary", "primary", settings.primary_dsn)] + [
            node(name, "replica", dsn)
            for name, dsn in zip(settings.replica_names, settings.replica_dsns, strict=True)
        ]
        self.admission = Admission(settings, self.nodes)
        self.router = Router(
            self.nodes,
            max_replica_lag_s=settings.max_replica_lag_s,
            analytics_primary_fallback=settings.analytics_primary_fallback,
            analytics_replicas=settings.analytics_replicas,
        )
        self.probe = HealthProbe(
            self.nodes, interval_s=settings.probe_interval_s, timeout_s=settings.connect_timeout_s
        )
        self._transactions = Transactions(settings, self.admission, observer)
        self._runner = Runner(self._transactions, self._routes, self._fail_node)
        self._background: set[asyncio.Task[None]] = set()
        self.tokens = TokenSigner(settings.jwt_secret or settings.jwt_public_key or "")

    @property
    def observer(self) -> StatementObserver | None:
        """Sees every statement; may be set after construction."""
        return self._transactions.observer

    @observer.setter
    def observer(self, observer: StatementObserver | None) -> None:
        self._transactions.observer = observer

    @property
    def analytics_runs(self) -> RecentRuns:
        """Recent runs of keyed analytics (``Admission.runs``)."""
        return self.admission.runs

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Probe every node once (a down node does not stop start-up), then
        keep probing in the background."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                self.probe.probe_all(), timeout=self.settings.connect_timeout_s * 4
            )
        self.probe.start()

    async def close(self) -> None:
        await self.probe.stop()
        await asyncio.gather(*(n.close() for n in self.nodes), return_exceptions=True)

    def describe(self) -> list[dict[str, object]]:
        return [n.describe() for n in self.nodes]

    # -- consistency tokens -------------------------------------------------
    def make_token(self, lsn: int) -> str:
        return self.tokens.make(lsn)

    def parse_token(self, token: str | None) -> int | None:
        """The LSN in a token this deployment issued; None for anything else
        (a forged or foreign token must not force reads onto the primary)."""
        return self.tokens.parse(token)

    # -- routing and node health ----------------------------------------------
    async def _routes(self, intent: Intent, min_lsn: int | None) -> list[Route]:
        """The router's candidates; when none may serve (or reads would fall
        back to the primary) on health older than two probe intervals (the
        probe loop was starved), probe once more before deciding."""
        routes = self.router.routes(intent, min_lsn)
        degraded = not routes or (
            intent != "write" and self.router.replicas and routes[0].node.role == "primary"
        )
        if (degraded and self._health_stale()) or (not routes and self._lag_may_be_over()):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self.probe.probe_all(), timeout=self.settings.connect_timeout_s
                )
            routes = self.router.routes(intent, min_lsn)
        return routes

    def _health_stale(self) -> bool:
        oldest = min(n.health.probed_at for n in self.nodes)
        return time.monotonic() - oldest > 2 * self.settings.probe_interval_s

    def _lag_may_be_over(self) -> bool:
        """Whether a refusal rests only on replicas found lagging more than
        ``RECHECK_LAG_S`` ago: a replica catches up between probes, and
        refusing on an old reading turns a lag that has ended into a 503."""
        now = time.monotonic()
        return any(
            n.usable and not self.router.within_lag(n) and now - n.health.probed_at > RECHECK_LAG_S
            for n in self.router.replicas
        )

    def _fail_node(self, node: Node, exc: BaseException) -> None:
        """A connection to ``node`` failed. One dead connection (a backend
        terminated, a pooled socket timed out) does not prove the node dead,
        so probe it now: the probe opens the breaker if the node is gone."""
        log.warning("connection failed", extra={"node": node.name, "error": type(exc).__name__})
        self.probe.probe_soon(node)
        if node.pool is not None:
            # close idle connections now; busy ones are closed when released
            task = asyncio.get_running_loop().create_task(node.pool.expire_connections())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # -- transactions (retry.py, transaction.py) --------------------------------
    def transaction(
        self, tenant: TenantContext, intent: Intent, *, min_lsn: int | None = None
    ) -> AbstractAsyncContextManager[TenantConnection]:
        """One tenant transaction, no retry (use ``run`` for retried reads).
        Errors leave as ``GatewayError``."""
        return self._runner.transaction(tenant, intent, min_lsn)

    async def run(
        self,
        tenant: TenantContext,
        intent: Intent,
        min_lsn: int | None,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` in one tenant transaction. Reads and
        analytics that fail on a connection-level error (or on a replica not
        caught up with ``min_lsn``) are retried once on the next eligible
        node; query errors are never retried; writes are never retried."""
        return await self._runner.run(tenant, intent, min_lsn, None, None, fn, *args, **kwargs)

    async def run_keyed(
        self,
        tenant: TenantContext,
        intent: Intent,
        min_lsn: int | None,
        cost_key: Hashable | None,
        client_gone: ClientGone | None,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``run``, timing the runs of analytics that name their kind
        (``cost_key``, e.g. a planned statement's text) so that short kinds
        skip the analytics slots; ``client_gone`` (the session's) ends a
        wait for a slot, and a long kind's work, when the client leaves."""
        return await self._runner.run(
            tenant, intent, min_lsn, cost_key, client_gone, fn, *args, **kwargs
        )

    def session(
        self,
        tenant: TenantContext,
        token: str | None = None,
        client_gone: ClientGone | None = None,
    ) -> DbSession:
        """One request's session; ``client_gone`` returns when its client has
        left (``None``: a caller that cannot tell)."""
        return DbSession(self, tenant, self.parse_token(token), client_gone)
