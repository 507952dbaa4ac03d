"""Analytics admission: when an analytics transaction may start on a node,
how many one request runs at once, and the race of those waits (and of a
long transaction's work) against a client that went away.

- The node's analytics slots (``DBX_ANALYTICS_CONCURRENCY``) keep
  database-bound statements from crowding a replica: past a few, more
  CPU-bound statements only share its CPU more thinly, while the reads on
  the same replica wait.
- Kinds whose recent runs for the org took under ``DBX_ANALYTICS_SLOT_MIN_MS``
  on average take a place in the node's short lane
  (``DBX_ANALYTICS_UNSLOTTED_MAX``) instead: queued behind long ones, they
  would leave the replica idle between their round trips; the lane bounds
  what statements that turn out long (their history misled) can hold.
- A request's turns (``DBX_ANALYTICS_PER_REQUEST``) keep its many analytics
  fields (aliases) from taking every slot of a node.

Every wait lasts at most the analytics timeout (then ``Timeout``), and ends
with ``ClientClosedRequest`` when the request's client leaves (the session's
``client_gone``).

Must not: open connections, route, or know SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from gateway.config import Settings
from gateway.db.costs import RecentRuns
from gateway.db.nodes import Node
from gateway.db.router import Intent
from gateway.errors import ClientClosedRequest, Timeout

log = logging.getLogger("dbx.db")

T = TypeVar("T")

# A coroutine function that returns when a request's client has gone away.
ClientGone = Callable[[], Awaitable[object]]

NODE_BUSY = "Too many analytics queries are running; retry later"
REQUEST_BUSY = "This request's analytics fields took too long; ask for fewer at once"

__all__ = [
    "Admission",
    "ClientGone",
    "RequestTurns",
    "acquire_in_time",
    "acquire_unless_gone",
    "unless_gone",
]


class Admission:
    """The analytics slots and short lanes of every node, and the recent
    runs that tell short kinds from long ones."""

    def __init__(self, settings: Settings, nodes: list[Node]) -> None:
        self.settings = settings
        if settings.analytics_concurrency:
            for n in nodes:
                n.analytics_slots = asyncio.Semaphore(settings.analytics_concurrency)
        # runs of keyed analytics (planned statements), for skipping the slots
        self.runs = RecentRuns()
        self._slot_min_s = settings.analytics_slot_min_ms / 1000
        # short analytics at once per node, in a lane of their own: within
        # the pool, less the slots and one connection kept for reads
        lane = min(
            settings.analytics_unslotted_max,
            max(0, settings.pool_max_size - settings.analytics_concurrency - 1),
        )
        if settings.analytics_concurrency and lane:
            for n in nodes:
                n.analytics_lane = asyncio.Semaphore(lane)

    async def admit(
        self, node: Node, intent: Intent, kind: Hashable | None, gone: ClientGone | None
    ) -> asyncio.Semaphore | None:
        """Wait for a place on ``node``: a short kind in the short lane, any
        other analytics in a slot. Returns the semaphore held, to release
        when the transaction ends (``node.analytics_slots`` for a long kind),
        or None when nothing is held."""
        slots = node.analytics_slots if intent == "analytics" else None
        if slots is None:
            return None
        lane = node.analytics_lane
        if kind is not None and lane is not None and self.runs.typical(kind) < self._slot_min_s:
            await acquire_in_time(lane, self._timeout_s(), NODE_BUSY, gone)
            return lane
        await self._slot(node, slots, gone)
        return slots

    def _timeout_s(self) -> float:
        return self.settings.analytics_timeout_ms / 1000

    async def _slot(self, node: Node, slots: asyncio.Semaphore, gone: ClientGone | None) -> None:
        """Take one of ``node``'s analytics slots, counting the wait in
        ``node.analytics_waiting`` (``dbx_analytics_waiting``)."""
        if not slots.locked():
            await slots.acquire()  # free: no timer
            return
        node.analytics_waiting += 1
        try:
            await acquire_in_time(slots, self._timeout_s(), NODE_BUSY, gone)
        finally:
            node.analytics_waiting -= 1


class RequestTurns:
    """One request's analytics transactions at once
    (``DBX_ANALYTICS_PER_REQUEST``): its other analytics fields wait their
    turn, at most the analytics timeout each."""

    __slots__ = ("_turns", "_timeout_s")

    def __init__(self, per_request: int, timeout_s: float) -> None:
        self._turns = asyncio.Semaphore(per_request)
        self._timeout_s = timeout_s

    async def take(self, gone: ClientGone | None) -> None:
        await acquire_in_time(self._turns, self._timeout_s, REQUEST_BUSY, gone)

    def give_back(self) -> None:
        self._turns.release()


async def acquire_in_time(
    slots: asyncio.Semaphore, timeout_s: float, message: str, gone: ClientGone | None
) -> None:
    """``slots.acquire()``, at most ``timeout_s`` (then ``Timeout(message)``),
    leaving early when the client goes."""
    if not slots.locked():
        await slots.acquire()
        return
    try:
        async with asyncio.timeout(timeout_s):
            if gone is None:
                await slots.acquire()
            else:
                await acquire_unless_gone(slots, gone)
    except TimeoutError:
        raise Timeout(message) from None


async def acquire_unless_gone(slots: asyncio.Semaphore, gone: ClientGone) -> None:
    """``slots.acquire()`` raced against the client (``unless_gone``). A slot
    taken is either kept (returned normally) or given back, also when the
    wait itself is cancelled (the analytics timeout)."""
    acquire = asyncio.ensure_future(slots.acquire())
    try:
        await unless_gone(acquire, gone)
    except BaseException:
        if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
            slots.release()  # granted as the wait ended otherwise
        raise


async def unless_gone(work: Awaitable[T], gone: ClientGone) -> T:
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
