"""The router: which node serves an intent.

- ``write``: the primary, always.
- ``read``: a usable replica within the lag limit (fewest connections in use,
  then lowest lag); the primary when none may serve.
- ``analytics``: replicas only, those of ``DBX_ANALYTICS_REPLICAS`` first
  (the others only when none of those may serve); the primary only when
  configured to.

A request carrying a consistency token needs a replica whose replay position
has reached it; that check is made on the chosen connection itself (see
``Database``), the router only orders candidates.

Must not: know table names or open connections.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.db.nodes import Node

Intent = Literal["read", "write", "analytics"]


@dataclass(frozen=True)
class Route:
    """One candidate node and why it was chosen (span attributes, logs)."""

    node: Node
    reason: str
    lag_s: float | None


class Router:
    def __init__(
        self,
        nodes: Sequence[Node],
        *,
        max_replica_lag_s: float,
        analytics_primary_fallback: bool,
        analytics_replicas: Sequence[str] = (),
    ) -> None:
        self.primary = next(n for n in nodes if n.role == "primary")
        self.replicas = [n for n in nodes if n.role == "replica"]
        self.max_replica_lag_s = max_replica_lag_s
        self.analytics_primary_fallback = analytics_primary_fallback
        self.analytics_replicas = frozenset(analytics_replicas)

    def within_lag(self, node: Node) -> bool:
        """Whether ``node``'s last lag reading is within ``DBX_MAX_REPLICA_LAG_S``."""
        lag = node.health.lag_s
        return lag is not None and lag <= self.max_replica_lag_s

    def eligible_replicas(self, min_lsn: int | None = None) -> list[Node]:
        out = [n for n in self.replicas if n.usable and self.within_lag(n)]
        # Known to have replayed far enough first (a paused replica last),
        # then fewest connections in use or analytics waiting for a slot,
        # lower lag (to 0.1 s), then at random:
        # a fixed rotation would lock onto one replica whenever a request
        # makes an even number of reads.
        out.sort(
            key=lambda n: (
                min_lsn is not None and (n.health.wal_lsn or 0) < min_lsn,
                min_lsn is not None and n.health.replay_paused,
                n.in_use + n.analytics_waiting,
                round(n.health.lag_s or 0.0, 1),
                random.random(),
            )
        )
        return out

    def routes(self, intent: Intent, min_lsn: int | None = None) -> list[Route]:
        """Candidates in order of preference; empty when nothing may serve."""
        if intent == "write":
            return [Route(self.primary, "write", 0.0)] if self.primary.usable else []
        replicas = self.eligible_replicas(min_lsn)
        reason = "consistent-replica" if min_lsn else "replica"
        out = [Route(n, reason, n.health.lag_s) for n in replicas]
        if intent == "analytics" and self.analytics_replicas:
            # each group keeps the order above
            preferred = [r for r in out if r.node.name in self.analytics_replicas]
            others = [
                Route(r.node, "replica-after-analytics-replicas", r.lag_s)
                for r in out
                if r.node.name not in self.analytics_replicas
            ]
            out = preferred + others
        fallback = intent == "read" or self.analytics_primary_fallback
        if fallback and self.primary.usable:
            reason = "primary-fallback" if not replicas else "primary-after-replicas"
            if not self.replicas:
                reason = "primary-no-replicas"
            out.append(Route(self.primary, reason, 0.0))
        return out
