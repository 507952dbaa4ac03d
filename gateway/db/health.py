"""Node health: a background probe per node.

Each probe opens (once) a dedicated connection outside the request pool, so a
saturated pool never makes a healthy node look dead, and reads: in recovery
or not, the replay (or current) LSN, replay lag in seconds, and whether
replay is paused. A replica found not in recovery (promoted) or a primary
found in recovery is excluded and reported, never silently used.

Must not: know table names, or route requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from gateway.db.nodes import Node

log = logging.getLogger("dbx.db.health")

PROBE_SQL = """
select pg_is_in_recovery() as in_recovery,
       (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
             else pg_current_wal_lsn() end - '0/0'::pg_lsn)::bigint as wal_lsn,
       case when not pg_is_in_recovery() then 0
            -- caught up with everything received: no lag, however long
            -- ago the last transaction was replayed (an idle primary)
            when pg_last_wal_receive_lsn() is not null
                 and pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() then 0
            else extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp())
       end::float8 as lag_s,
       case when pg_is_in_recovery() then pg_is_wal_replay_paused() else false end as paused,
       host(inet_server_addr()) as addr,
       inet_server_port() as port,
       (pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint as received
"""
# A replica that received more than it replayed is either behind or simply
# busy replaying the last few records: ask again a moment later whether it
# has replayed what it had received.
SETTLED_SQL = "select (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint >= $1"
SETTLE_DELAY_S = 0.02
# A probe timeout that fires this much later than due (at least; half the
# timeout when that is more) means this process stalled, not the node.
STALL_S = 0.25


class HealthProbe:
    """Probes every node each ``interval_s`` until stopped."""

    def __init__(self, nodes: Sequence[Node], *, interval_s: float, timeout_s: float) -> None:
        self.nodes = list(nodes)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._conns: dict[str, asyncpg.Connection] = {}
        self._task: asyncio.Task[None] | None = None
        # the probe of each node under way, joined by whoever asks meanwhile
        self._inflight: dict[str, asyncio.Task[None]] = {}
        # (when, primary WAL position) of recent probe rounds, for lag
        self._history: collections.deque[tuple[float, int]] = collections.deque(maxlen=600)
        self.changed = asyncio.Event()

    def probe_soon(self, node: Node) -> None:
        """Probe ``node`` now, outside the schedule, without waiting for it
        (or let the probe already under way do)."""
        self._probe_task(node)

    async def probe(self, node: Node) -> None:
        """Probe ``node``, or wait for the probe of it already under way.

        The background loop, a router that found health stale and a failed
        connection may all ask at once. The node has one probe connection,
        and a second query on it while the first runs fails in asyncpg
        ("another operation is in progress"): that failure is ours, not the
        node's, yet it used to mark a healthy node down. So one probe per
        node runs at a time and every caller shares its outcome. A caller
        that stops waiting (its own timeout) does not cancel it for the
        others, nor leave the connection halfway through a query."""
        await asyncio.shield(self._probe_task(node))

    def _probe_task(self, node: Node) -> asyncio.Task[None]:
        task = self._inflight.get(node.name)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._probe(node), name=f"dbx-probe-{node.name}"
            )
            self._inflight[node.name] = task
            task.add_done_callback(functools.partial(self._probe_done, node.name))
        return task

    def _probe_done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._inflight.get(name) is task:
            del self._inflight[name]
        if not task.cancelled() and task.exception() is not None:  # marks it retrieved
            log.error("probe crashed", exc_info=task.exception(), extra={"node": name})

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(n) for n in self.nodes))
        primary = next((n for n in self.nodes if n.role == "primary"), None)
        head = primary.health.wal_lsn if primary and primary.health.reachable else None
        now = time.monotonic()
        if head is not None:
            self._history.append((now, head))
        for n in self.nodes:
            if n.role == "replica" and head is not None and n.health.wal_lsn is not None:
                n.health.lag_bytes = max(0, head - n.health.wal_lsn)
                seen = self._lag_from_history(n.health.wal_lsn, now)
                if seen is not None and n.health.lag_s is not None:
                    n.health.lag_s = min(n.health.lag_s, seen)
            elif n.role == "primary":
                n.health.lag_bytes = 0

    def _lag_from_history(self, replayed: int, now: float) -> float | None:
        """How long ago the primary was at a position the replica has
        replayed: an upper bound of the replica's lag, within one probe
        interval. The replica's own view (time since the last replayed
        transaction) overstates the lag after the primary was idle: a
        replica that is merely receiving the first write in minutes would
        look minutes behind, and be left out for a probe interval."""
        if not self._history:
            return None
        if replayed >= self._history[-1][1]:
            return 0.0
        for at, lsn in reversed(self._history):
            if lsn <= replayed:
                return now - at
        return now - self._history[0][0]  # behind everything remembered

    async def _probe(self, node: Node) -> None:
        t0 = time.monotonic()
        try:
            row = await asyncio.wait_for(self._probe_row(node), timeout=self.timeout_s)
        except TimeoutError:
            late = time.monotonic() - t0 - self.timeout_s
            if late > max(STALL_S, self.timeout_s / 2):
                # The timeout fired long after it was due: this process's
                # event loop was frozen (a blocking call, CPU starvation), so
                # the answer may well have been waiting. Marking every node
                # down for it would turn a pause here into an outage; the
                # next probe decides.
                await self._drop_conn(node)
                log.warning(
                    "probe inconclusive: event loop stalled",
                    extra={"node": node.name, "late_s": round(late, 3)},
                )
                return
            await self._fail(node, "TimeoutError")
            return
        except Exception as exc:  # any failure means unreachable for now
            await self._fail(node, type(exc).__name__)
            return

        h = node.health
        h.in_recovery = bool(row["in_recovery"])
        h.wal_lsn = row["wal_lsn"]
        h.lag_s = row["lag_s"]
        h.replay_paused = bool(row["paused"])
        h.probed_at = time.monotonic()
        h.error = None
        node.address = f"{row['addr']}:{row['port']}" if row["addr"] else node.address
        if node.role == "replica" and not h.in_recovery:
            node.excluded_reason = "replica is not in recovery (promoted?)"
        elif node.role == "primary" and h.in_recovery:
            node.excluded_reason = "primary is in recovery (demoted?)"
        else:
            node.excluded_reason = None
        if not h.reachable or node.breaker.state != "closed":
            if not node.breaker.may_probe_close():
                return
            try:
                await asyncio.wait_for(node.ensure_pool(), timeout=self.timeout_s * 3)
            except Exception as exc:
                node.health.error = type(exc).__name__
                node.breaker.trip()
                return
            if not h.reachable:
                log.info("node up", extra={"node": node.name})
            h.reachable = True
            node.breaker.close()
            self.changed.set()

    async def _fail(self, node: Node, error: str) -> None:
        await self._drop_conn(node)
        was_up = node.health.reachable
        node.health.reachable = False
        node.health.error = error
        node.health.probed_at = time.monotonic()
        node.breaker.trip()
        if was_up:
            log.warning("node down", extra={"node": node.name, "error": error})

    async def _probe_row(self, node: Node) -> Mapping[str, Any]:
        try:
            return await self._query(node)
        except asyncpg.InterfaceError as exc:
            if not _busy(exc):
                raise
        # The probe connection was busy with something of ours: nothing is
        # known about the node yet. Ask again on a fresh connection.
        log.warning("probe connection busy", extra={"node": node.name})
        await self._drop_conn(node)
        return await self._query(node)

    async def _query(self, node: Node) -> Mapping[str, Any]:
        conn = self._conns.get(node.name)
        if conn is None or conn.is_closed():
            conn = await asyncpg.connect(
                node.connect_dsn,
                timeout=self.timeout_s,
                statement_cache_size=0,
                server_settings={"application_name": "dbx-gateway-probe"},
            )
            self._conns[node.name] = conn
        row = await conn.fetchrow(PROBE_SQL)
        if row is None:  # pragma: no cover - the query always returns a row
            raise RuntimeError("empty probe")
        if row["lag_s"] and row["received"] is not None and not row["paused"]:
            await asyncio.sleep(SETTLE_DELAY_S)
            if await conn.fetchval(SETTLED_SQL, row["received"]):
                return {**dict(row), "lag_s": 0.0}
        return dict(row)

    async def _drop_conn(self, node: Node) -> None:
        conn = self._conns.pop(node.name, None)
        if conn is not None:
            conn.terminate()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dbx-health-probe")

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.probe_all()
            except Exception:  # never let the probe loop die
                log.exception("health probe failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        probes = list(self._inflight.values())
        for task in probes:
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        self._inflight.clear()
        for name in list(self._conns):
            self._conns.pop(name).terminate()


def _busy(exc: asyncpg.InterfaceError) -> bool:
    """asyncpg refused to start a query because the connection is still busy
    with another one of ours (client-side; no query reached the server)."""
    return "another operation is" in str(exc)
