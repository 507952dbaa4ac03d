"""The retry policy: which of the router's candidates a transaction runs on,
when it runs again on the next one, and what its errors become.

Reads and analytics that fail on a connection-level error (or on a replica
not caught up with the request's token) run once more on the next eligible
node; query errors are never retried; writes are never retried. Errors leave
as ``GatewayError``.

Must not: open connections itself (``transaction.py``), decide the
candidates (the router), or know table names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Concatenate, ParamSpec, TypeVar

from gateway.db.admission import ClientGone, unless_gone
from gateway.db.connection import TenantConnection
from gateway.db.nodes import Node
from gateway.db.router import Intent, Route
from gateway.db.transaction import NotReplayed, TenantContext, Transactions
from gateway.errors import (
    PREPARED_STATEMENT_ERRORS,
    GatewayError,
    Unavailable,
    classify_db_error,
    is_connection_error,
)

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["Runner"]


class Runner:
    """Runs tenant transactions on the candidates ``routes`` gives; reports a
    node whose connection failed to ``fail_node``."""

    def __init__(
        self,
        transactions: Transactions,
        routes: Callable[[Intent, int | None], Awaitable[list[Route]]],
        fail_node: Callable[[Node, BaseException], None],
    ) -> None:
        self._tx = transactions
        self._routes = routes
        self._fail_node = fail_node

    @asynccontextmanager
    async def transaction(
        self, tenant: TenantContext, intent: Intent, min_lsn: int | None
    ) -> AsyncIterator[TenantConnection]:
        """One tenant transaction on the first candidate, no retry."""
        routes = await self._routes(intent, min_lsn)
        if not routes:
            raise Unavailable()
        route = routes[0]
        try:
            async with self._tx.open(route, tenant, intent, min_lsn) as conn:
                yield conn
        except GatewayError:
            raise
        except NotReplayed:
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
        cost_key: Hashable | None,
        gone: ClientGone | None,
        fn: Callable[Concatenate[TenantConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(conn, ...)`` in one tenant transaction, retried as the module
        says. ``cost_key`` names an analytics statement's kind (the same key,
        the same work) so that short kinds skip the slots; ``gone`` ends a
        long analytics kind's wait and work when the client leaves."""
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
                async with self._tx.open(route, tenant, intent, min_lsn, cost_key, gone) as conn:
                    if conn.client_gone is None:
                        return await fn(conn, *args, **kwargs)
                    return await unless_gone(fn(conn, *args, **kwargs), conn.client_gone)
            except NotReplayed:
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
