"""The life of one tenant transaction on a chosen node: admission, a pooled
connection, waiting for the request's consistency token to be replayed, the
set-up statement, COMMIT or ROLLBACK, and giving the connection back (or
closing it when its state is unknown).

A tenant transaction costs one round trip to open: ``BEGIN`` and the
transaction-local settings (``dbx.org_id``, ``dbx.user_id``,
``statement_timeout``) go together in one simple-protocol message. Values are
never interpolated as text: the org id is a parsed UUID and the user id is
sent hex-encoded, so neither can break out of its literal.

Must not: choose the node or retry (``retry.py``), or know table names.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Protocol

from gateway.config import Settings
from gateway.db.admission import Admission, ClientGone
from gateway.db.connection import RawConnection, StatementObserver, TenantConnection
from gateway.db.router import Intent, Route
from gateway.errors import Unavailable, is_connection_error

log = logging.getLogger("dbx.db")

WAL_LSN_SQL = "select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"

__all__ = ["NotReplayed", "TenantContext", "Transactions", "setup_sql"]


class TenantContext(Protocol):
    """Who the transaction acts for (``gateway.auth.Principal`` is one)."""

    @property
    def org_id(self) -> uuid.UUID: ...

    @property
    def subject(self) -> str: ...


class NotReplayed(Exception):
    """The chosen replica has not replayed up to the request's token."""


def setup_sql(
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


class Transactions:
    """Opens tenant transactions on the node of a route."""

    def __init__(
        self, settings: Settings, admission: Admission, observer: StatementObserver | None
    ) -> None:
        self.settings = settings
        self.admission = admission
        self.observer = observer

    def _timeout_ms(self, intent: Intent) -> int:
        s = self.settings
        return {"read": s.read_timeout_ms, "write": s.write_timeout_ms}.get(
            intent, s.analytics_timeout_ms
        )

    @asynccontextmanager
    async def open(
        self,
        route: Route,
        tenant: TenantContext,
        intent: Intent,
        min_lsn: int | None,
        cost_key: Hashable | None = None,
        gone: ClientGone | None = None,
    ) -> AsyncIterator[TenantConnection]:
        """A tenant transaction on ``route``'s node, once admitted
        (``Admission.admit``). A long analytics kind's connection carries
        ``gone``: its work is worth cancelling for a client that left."""
        node = route.node
        kind = None if cost_key is None else (tenant.org_id, cost_key)
        held = None
        if intent == "analytics":
            held = await self.admission.admit(node, intent, kind, gone)
        try:
            async with self._connection(route, tenant, intent, min_lsn) as conn:
                if held is not None and held is node.analytics_slots:
                    conn.client_gone = gone
                t0 = time.perf_counter()
                yield conn
                if kind is not None:  # only runs that succeeded count
                    self.admission.runs.record(kind, time.perf_counter() - t0)
        finally:
            if held is not None:
                held.release()

    @asynccontextmanager
    async def _connection(
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
                except NotReplayed:
                    reusable = True  # idle, outside any transaction
                    raise
            comment = self.observer.sql_comment() if self.observer is not None else ""
            await raw.execute(
                setup_sql(
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
                raise NotReplayed()
            await asyncio.sleep(0.005)


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
