"""``DbSession``: one request's view of the database. It carries what is
per request: the tenant, the consistency the client asked for (its token's
LSN), the WAL position of what the request wrote, its analytics turns, and
how to tell that its client has gone away (``client_gone``, given by the
HTTP layer).

Must not: outlive its request, or know table names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from gateway.db.admission import ClientGone, RequestTurns
from gateway.db.connection import TenantConnection
from gateway.db.transaction import TenantContext
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.db.database import Database

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["DbSession"]


class DbSession:
    """One request's view of the database: its tenant, the consistency it
    asked for, and the WAL position of what it wrote."""

    def __init__(
        self,
        db: Database,
        tenant: TenantContext,
        min_lsn: int | None,
        client_gone: ClientGone | None = None,
    ) -> None:
        self.db = db
        self.tenant = tenant
        self.min_lsn = min_lsn
        self.written_lsn: int | None = None
        # returns when the request's client has left: a wait for an analytics
        # slot, and the work of a transaction that took one, then end early
        # with ``ClientClosedRequest``
        self.client_gone = client_gone
        # a planned statement's UNAVAILABLE or TIMEOUT, the answer of the
        # resolvers' reads from then on (``fail_fast``)
        self._failed: GatewayError | None = None
        # this request's analytics at once (DBX_ANALYTICS_PER_REQUEST), made
        # on its first analytics
        self._analytics_turns: RequestTurns | None = None

    async def read(
        self,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        self._fail_if_failed()
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
        self._fail_if_failed()
        db, gone = self.db, self.client_gone
        per_request = db.settings.analytics_per_request
        if not per_request:
            return await db.run_keyed(
                self.tenant, "analytics", self.min_lsn, cost_key, gone, fn, *args, **kwargs
            )
        turns = self._analytics_turns
        if turns is None:
            turns = self._analytics_turns = RequestTurns(
                per_request, db.settings.analytics_timeout_ms / 1000
            )
        await turns.take(gone)
        try:
            return await db.run_keyed(
                self.tenant, "analytics", self.min_lsn, cost_key, gone, fn, *args, **kwargs
            )
        finally:
            turns.give_back()

    def fail_fast(self, err: GatewayError) -> None:
        """A planned statement of this request failed with ``err``
        (``UNAVAILABLE`` or ``TIMEOUT``): the resolvers that answer instead
        fail the same way at once, with no statement, rather than run the
        same work again under the same overload."""
        self._failed = err

    def _fail_if_failed(self) -> None:
        err = self._failed
        if err is not None:
            raise type(err)(err.message, **err.extensions)

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
