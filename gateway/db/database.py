"""``Database``: the nodes, their health probe, the router, and the tenant
transaction every query runs in.

A tenant transaction costs one round trip to open: ``BEGIN`` and the
transaction-local settings (``dbx.org_id``, ``dbx.user_id``,
``statement_timeout``) go together in one simple-protocol message. Values are
never interpolated as text: the org id is a parsed UUID and the user id is
sent hex-encoded, so neither can break out of its literal.

Must not: know table names.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from gateway.config import Settings
from gateway.db.connection import RawConnection, StatementObserver, TenantConnection
from gateway.db.costs import RecentRuns
from gateway.db.health import HealthProbe
from gateway.db.nodes import Breaker, Node
from gateway.db.router import Intent, Route, Router
from gateway.errors import (
    PREPARED_STATEMENT_ERRORS,
    ClientClosedRequest,
    GatewayError,
    Timeout,
    Unavailable,
    classify_db_error,
    is_connection_error,
)

log = logging.getLogger("dbx.db")

# A replica left out for lag is probed again before a request is refused
# for it, unless its reading is younger than this.
RECHECK_LAG_S = 0.1

WAL_LSN_SQL = "select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
# a token's LSN: lower-case hex as ``make_token`` writes it, within bigint
TOKEN_LSN = re.compile(r"[0-9a-f]{1,16}")
MAX_LSN = (1 << 63) - 1

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["Database", "Intent", "TenantContext", "DbSession"]


class TenantContext(Protocol):
    """Who the transaction acts for (``gateway.auth.Principal`` is one)."""

    @property
    def org_id(self) -> uuid.UUID: ...

    @property
    def subject(self) -> str: ...


def _setup_sql(
    tenant: TenantContext, timeout_ms: int, idle_ms: int, read_only: bool, comment: str
) -> str:
    org = str(uuid.UUID(str(tenant.org_id)))  # canonical form: hex digits and dashes only
    user_hex = tenant.subject.encode("utf-8").hex()
    mode = " READ ONLY" if read_only else ""
    return (
        f"BEGIN ISOLATION LEVEL READ COMMITTED{mode};"
        f"SELECT set_config('dbx.org_id', '{org}', true),"
        f" set_config('dbx.user_id', convert_from('\\x{user_hex}'::bytea, 'UTF8'), true),"
        f" set_config('statement_timeout', '{int(timeout_ms)}', true),"
        # a backstop: a transaction idle that long is ended by the server
        f" set_config('idle_in_transaction_session_timeout', '{int(idle_ms)}', true){comment}"
    )


# Set per request by the HTTP layer: a coroutine function that returns when
# the request's client has gone away. A wait for an analytics slot, and the
# work of a transaction that took one, end early with ``ClientClosedRequest``
# when it does.
CLIENT_GONE: contextvars.ContextVar[Callable[[], Awaitable[object]] | None] = (
    contextvars.ContextVar("dbx_client_gone", default=None)
)


class Database:
    """All nodes of one deployment, for the app's lifetime."""

    def __init__(self, settings: Settings, *, observer: StatementObserver | None = None) -> None:
        self.settings = settings
        self.observer = observer

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
        if settings.analytics_concurrency:
            for n in self.nodes:
                n.analytics_slots = asyncio.Semaphore(settings.analytics_concurrency)
        # runs of keyed analytics (planned statements), for skipping the slots
        self.analytics_runs = RecentRuns()
        self._slot_min_s = settings.analytics_slot_min_ms / 1000
        # short analytics at once per node, in a lane of their own: within
        # the pool, less the slots and one connection kept for reads
        lane = min(
            settings.analytics_unslotted_max,
            max(0, settings.pool_max_size - settings.analytics_concurrency - 1),
        )
        if settings.analytics_concurrency and lane:
            for n in self.nodes:
                n.analytics_lane = asyncio.Semaphore(lane)
        self.router = Router(
            self.nodes,
            max_replica_lag_s=settings.max_replica_lag_s,
            analytics_primary_fallback=settings.analytics_primary_fallback,
            analytics_replicas=settings.analytics_replicas,
        )
        self.probe = HealthProbe(
            self.nodes, interval_s=settings.probe_interval_s, timeout_s=settings.connect_timeout_s
        )
        self._background: set[asyncio.Task[None]] = set()
        key_material = (settings.jwt_secret or settings.jwt_public_key or "").encode()
        self._token_key = hashlib.sha256(b"dbx-consistency\0" + key_material).digest()

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
        body = f"{lsn:x}"
        mac = hmac.new(self._token_key, body.encode(), hashlib.sha256).hexdigest()[:16]
        return f"1.{body}.{mac}"

    def parse_token(self, token: str | None) -> int | None:
        """The LSN in a token this deployment issued; None for anything else
        (a forged or foreign token must not force reads onto the primary)."""
        if not token:
            return None
        parts = token.strip().split(".")
        if len(parts) != 3 or parts[0] != "1" or not TOKEN_LSN.fullmatch(parts[1]):
            return None
        mac = hmac.new(self._token_key, parts[1].encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(mac, parts[2]):
            return None
        lsn = int(parts[1], 16)
        return lsn if lsn <= MAX_LSN else None  # a bigint, as PostgreSQL compares it

    # -- transactions --------------------------------------------------------
    def _timeout_ms(self, intent: Intent) -> int:
        s = self.settings
        return {"read": s.read_timeout_ms, "write": s.write_timeout_ms}.get(
            intent, s.analytics_timeout_ms
        )

    @asynccontextmanager
    async def _open(
        self,
        route: Route,
        tenant: TenantContext,
        intent: Intent,
        min_lsn: int | None,
        cost_key: Hashable | None = None,
    ) -> AsyncIterator[TenantConnection]:
        """A tenant transaction on ``route``'s node; analytics first take one
        of the node's analytics slots (``DBX_ANALYTICS_CONCURRENCY``), unless
        the recent runs of ``cost_key`` for this org took under
        ``DBX_ANALYTICS_SLOT_MIN_MS`` on average: such short kinds take a
        place in the node's short lane (``DBX_ANALYTICS_UNSLOTTED_MAX``)
        instead. The slots keep database-bound statements from crowding a
        replica, while short ones, queued behind them, would leave it idle
        between their round trips; the lane bounds what statements that turn
        out long (their history misled) can hold at once."""
        node = route.node
        slots = node.analytics_slots if intent == "analytics" else None
        kind = None if cost_key is None else (tenant.org_id, cost_key)
        lane = None
        if (
            slots is not None
            and kind is not None
            and node.analytics_lane is not None
            and self.analytics_runs.typical(kind) < self._slot_min_s
        ):
            lane, slots = node.analytics_lane, None  # a short kind
            await self._acquire_in_time(lane, "Too many analytics queries are running; retry later")
        elif slots is not None:
            await self._analytics_slot(node, slots)
        try:
            async with self._open_connection(route, tenant, intent, min_lsn) as conn:
                if slots is not None:  # a long kind: worth cancelling for a client that left
                    conn.client_gone = CLIENT_GONE.get()
                t0 = time.perf_counter()
                yield conn
                if kind is not None:  # only runs that succeeded count
                    self.analytics_runs.record(kind, time.perf_counter() - t0)
        finally:
            if slots is not None:
                slots.release()
            if lane is not None:
                lane.release()

    async def _analytics_slot(self, node: Node, slots: asyncio.Semaphore) -> None:
        """Wait, at most the analytics timeout, until fewer than
        ``DBX_ANALYTICS_CONCURRENCY`` analytics transactions of this process
        run on ``node``. More CPU-bound statements than the node has cores
        only share its CPU out more thinly, and at a higher cost each; past a
        few, they add no throughput, while the reads on the same replica wait.
        A request whose client goes away meanwhile (``CLIENT_GONE``) leaves
        the queue with ``ClientClosedRequest`` instead of running for nobody."""
        if not slots.locked():
            await slots.acquire()  # free: no timer
            return
        node.analytics_waiting += 1
        try:
            await self._acquire_in_time(
                slots, "Too many analytics queries are running; retry later"
            )
        finally:
            node.analytics_waiting -= 1

    async def _acquire_in_time(self, slots: asyncio.Semaphore, message: str) -> None:
        """``slots.acquire()``, at most the analytics timeout (then
        ``Timeout(message)``), leaving early when the client goes."""
        if not slots.locked():
            await slots.acquire()
            return
        gone = CLIENT_GONE.get()
        try:
            async with asyncio.timeout(self.settings.analytics_timeout_ms / 1000):
                if gone is None:
                    await slots.acquire()
                else:
                    await _acquire_unless_gone(slots, gone)
        except TimeoutError:
            raise Timeout(message) from None

    @asynccontextmanager
    async def _open_connection(
        self, route: Route, tenant: TenantContext, intent: Intent, min_lsn: int | None
    ) -> AsyncIterator[TenantConnection]:
        node = route.node
        pool = node.pool
        if pool is None:
            raise Unavailable()
        timeout_ms = self._timeout_ms(intent)
        p0 = time.perf_counter()
        node.pool_waiting += 1
        try:
            if pool.get_idle_size():
                # a free connection: taken without waiting (``acquire`` with a
                # timeout runs through ``wait_for``, a task and a timer per call)
                raw = await pool.acquire()
            else:
                raw = await pool.acquire(timeout=self.settings.connect_timeout_s)
        except TimeoutError:
            if pool.get_size() >= node.pool_max_size:
                # every connection busy: this gateway is saturated, the node
                # is fine (no probe, no retry elsewhere; safe to retry later)
                raise Unavailable("The gateway is busy; retry later") from None
            raise  # connecting failed: the node may be gone
        finally:
            node.pool_waiting -= 1
        node.in_use += 1
        pool_wait = time.perf_counter() - p0
        budget_s = timeout_ms / 1000 + 1.0  # statement_timeout fires first; this is the backstop
        # Set-up and clean-up are one tiny round trip each: a node that cannot
        # answer them within the connect timeout is frozen or overloaded, and
        # asyncpg would otherwise wait on its socket without end.
        quick_s = self.settings.connect_timeout_s
        reusable = False  # whether the connection may go back to the pool as is
        try:
            if min_lsn is not None and node.role == "replica":
                try:
                    await self._wait_replayed(raw, min_lsn, quick_s)
                except _NotReplayed:
                    reusable = True  # idle, outside any transaction
                    raise
            comment = self.observer.sql_comment() if self.observer is not None else ""
            await raw.execute(
                _setup_sql(
                    tenant,
                    timeout_ms,
                    self.settings.idle_in_transaction_timeout_ms,
                    intent != "write",
                    comment,
                ),
                timeout=quick_s,
            )
            conn = TenantConnection(
                raw,
                route,
                intent,
                timeout_s=budget_s,
                pool_wait_s=pool_wait,
                observer=self.observer,
            )
            try:
                yield conn
            except BaseException as exc:
                reusable = await _rollback(raw, exc, quick_s)
                raise
            await raw.execute("COMMIT", timeout=budget_s)
            reusable = True
            if intent == "write":
                # the read-your-writes token: the WAL position just after the
                # commit, read on the same connection before it goes back
                try:
                    conn.commit_lsn = int(await raw.fetchval(WAL_LSN_SQL, timeout=quick_s))
                except Exception:  # the write committed; only the token is lost
                    reusable = False
                    log.warning("could not read the WAL position after a write")
        finally:
            node.in_use -= 1
            if not reusable and not raw.is_closed():
                # A statement timed out, was interrupted or the link failed: its
                # state is unknown and a ROLLBACK could wait on a frozen server
                # forever. Closing the socket makes the server roll back.
                raw.terminate()
            try:
                await pool.release(raw, timeout=quick_s)
            except Exception:  # a broken connection: the pool already dropped it
                log.debug("release failed", exc_info=True)

    async def _wait_replayed(self, raw: RawConnection, min_lsn: int, timeout_s: float) -> None:
        deadline = time.monotonic() + self.settings.consistency_wait_ms / 1000
        while True:
            reached = await raw.fetchval(
                "select coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0) >= $1",
                min_lsn,
                timeout=timeout_s,
            )
            if reached:
                return
            if time.monotonic() >= deadline:
                raise _NotReplayed()
            await asyncio.sleep(0.005)

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

    @asynccontextmanager
    async def transaction(
        self, tenant: TenantContext, intent: Intent, *, min_lsn: int | None = None
    ) -> AsyncIterator[TenantConnection]:
        """One tenant transaction, no retry (use ``run`` for retried reads).
        Errors leave as ``GatewayError``."""
        routes = await self._routes(intent, min_lsn)
        if not routes:
            raise Unavailable()
        route = routes[0]
        try:
            async with self._open(route, tenant, intent, min_lsn) as conn:
                yield conn
        except GatewayError:
            raise
        except _NotReplayed:
            raise Unavailable("No node has caught up with your last write yet") from None
        except PREPARED_STATEMENT_ERRORS as exc:
            await route.node.disable_statement_cache()
            raise Unavailable() from exc
        except BaseException as exc:
            if is_connection_error(exc):
                self._fail_node(route.node, exc)
            err = classify_db_error(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise err from exc

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
        return await self.run_keyed(tenant, intent, min_lsn, None, fn, *args, **kwargs)

    async def run_keyed(
        self,
        tenant: TenantContext,
        intent: Intent,
        min_lsn: int | None,
        cost_key: Hashable | None,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``run``, timing the runs of analytics that name their kind
        (``cost_key``, e.g. a planned statement's text) so that short kinds
        skip the analytics slots."""
        routes = await self._routes(intent, min_lsn)
        if not routes:
            raise Unavailable()
        attempts = 0
        last: BaseException | None = None
        for route in routes:
            if not route.node.usable:
                continue
            attempts += 1
            try:
                async with self._open(route, tenant, intent, min_lsn, cost_key) as conn:
                    if conn.client_gone is None:
                        return await fn(conn, *args, **kwargs)
                    return await _unless_gone(fn(conn, *args, **kwargs), conn.client_gone)
            except _NotReplayed:
                continue  # not an error: try the next candidate (ends with the primary)
            except PREPARED_STATEMENT_ERRORS as exc:
                await route.node.disable_statement_cache()
                last = exc
                if attempts > 2:
                    break
                continue
            except GatewayError:
                raise
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                if not is_connection_error(exc) and not isinstance(exc, TimeoutError):
                    raise classify_db_error(exc) from exc
                self._fail_node(route.node, exc)
                last = exc
                if intent == "write" or attempts >= 2:
                    break
        if last is not None:
            raise Unavailable() from last
        raise Unavailable()

    def session(self, tenant: TenantContext, token: str | None = None) -> DbSession:
        return DbSession(self, tenant, self.parse_token(token))


async def _rollback(raw: RawConnection, exc: BaseException, timeout_s: float) -> bool:
    """Roll back after ``exc`` left the transaction body; True when the
    connection is known to be clean again."""
    if isinstance(exc, TimeoutError | asyncio.CancelledError) or is_connection_error(exc):
        return False  # a statement may still be running or the link is gone
    if raw.is_closed():
        return False
    try:
        await raw.execute("ROLLBACK", timeout=timeout_s)
    except Exception:
        return False
    return True


async def _acquire_unless_gone(
    slots: asyncio.Semaphore, gone: Callable[[], Awaitable[object]]
) -> None:
    """``slots.acquire()`` raced against the client (``_unless_gone``). A slot
    taken is either kept (returned normally) or given back, also when the
    wait itself is cancelled (the analytics timeout)."""
    acquire = asyncio.ensure_future(slots.acquire())
    try:
        await _unless_gone(acquire, gone)
    except BaseException:
        if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
            slots.release()  # granted as the wait ended otherwise
        raise


async def _unless_gone(work: Awaitable[T], gone: Callable[[], Awaitable[object]]) -> T:
    """``await work``; when ``gone()`` returns first, ``work`` is cancelled
    (asyncpg then cancels its running statement in PostgreSQL, and the
    transaction's ROLLBACK waits for that) and ``ClientClosedRequest`` is
    raised. A failing ``gone()`` counts as a client that stayed."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and watch.exception() is not None:
            log.debug("watching for the client failed", exc_info=watch.exception())
            return await task
    except BaseException:
        task.cancel()  # this request is cancelled: so is its work
        task.add_done_callback(_retrieve)
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()  # both may be done: the answer is there
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientClosedRequest()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # seen: no "never retrieved" warning


class _NotReplayed(Exception):
    """The chosen replica has not replayed up to the request's token."""


class DbSession:
    """One request's view of the database: its tenant, the consistency it
    asked for, and the WAL position of what it wrote."""

    def __init__(self, db: Database, tenant: TenantContext, min_lsn: int | None) -> None:
        self.db = db
        self.tenant = tenant
        self.min_lsn = min_lsn
        self.written_lsn: int | None = None
        self._analytics_timed_out = False
        # this request's analytics at once (DBX_ANALYTICS_PER_REQUEST), made
        # on its first analytics
        self._analytics_turns: asyncio.Semaphore | None = None

    async def read(
        self,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self.db.run(self.tenant, "read", self.min_lsn, fn, *args, **kwargs)

    async def analytics(
        self,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self.analytics_keyed(None, fn, *args, **kwargs)

    async def analytics_keyed(
        self,
        cost_key: Hashable | None,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``analytics`` for a statement whose cost ``cost_key`` names (the
        same key, the same work): short ones skip the analytics slots. A
        request runs at most ``DBX_ANALYTICS_PER_REQUEST`` analytics
        transactions at once: its other analytics fields (aliases) wait
        their turn, at most the analytics timeout each, instead of taking
        every slot of the node."""
        if self._analytics_timed_out:
            raise Timeout()
        per_request = self.db.settings.analytics_per_request
        if not per_request:
            return await self.db.run_keyed(
                self.tenant, "analytics", self.min_lsn, cost_key, fn, *args, **kwargs
            )
        turns = self._analytics_turns
        if turns is None:
            turns = self._analytics_turns = asyncio.Semaphore(per_request)
        await self.db._acquire_in_time(
            turns, "This request's analytics fields took too long; ask for fewer at once"
        )
        try:
            return await self.db.run_keyed(
                self.tenant, "analytics", self.min_lsn, cost_key, fn, *args, **kwargs
            )
        finally:
            turns.release()

    def fail_analytics_fast(self) -> None:
        """This request's analytics statement already ran out of time (the
        planner's): analytics answer ``TIMEOUT`` at once from now on."""
        self._analytics_timed_out = True

    @asynccontextmanager
    async def write(self) -> AsyncIterator[TenantConnection]:
        """A write transaction on the primary. After it commits, later reads of
        this request (and the client, through the token) see its effects."""
        async with self.db.transaction(self.tenant, "write") as conn:
            yield conn
        lsn = conn.commit_lsn
        if lsn is None:
            return
        self.written_lsn = max(self.written_lsn or 0, lsn)
        self.min_lsn = max(self.min_lsn or 0, lsn)

    @property
    def token(self) -> str | None:
        return None if self.written_lsn is None else self.db.make_token(self.written_lsn)
