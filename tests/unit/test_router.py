"""``Router``: which nodes may serve an intent, in which order, and why.
Pure: nodes are described by their last probe (``Health``), their breaker
and their counters; no pool is opened (a placeholder marks one as made)."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import pytest

from gateway.db.nodes import Breaker, Health, Node
from gateway.db.router import Router

MADE = cast(asyncpg.Pool, object())  # the router only asks whether a pool exists


def node(name: str, *, lag_s: float | None = 0.0, **kw: Any) -> Node:
    n = Node(
        name=name,
        role="primary" if name == "primary" else "replica",
        dsn=f"postgresql://dbx_gateway@127.0.0.1:6432/{name}",
        pool_min_size=0,
        pool_max_size=4,
        statement_cache_setting="off",
        connect_timeout_s=1.0,
        breaker=Breaker(cooldown_s=30.0),
        health=Health(reachable=True, lag_s=lag_s),
        pool=MADE,
    )
    for key, value in kw.items():
        setattr(n, key, value)
    return n


def router(*nodes: Node, fallback: bool = False, analytics: tuple[str, ...] = ()) -> Router:
    return Router(
        nodes,
        max_replica_lag_s=5.0,
        analytics_primary_fallback=fallback,
        analytics_replicas=analytics,
    )


def names(r: Router, intent: Any, min_lsn: int | None = None) -> list[tuple[str, str]]:
    return [(x.node.name, x.reason) for x in r.routes(intent, min_lsn)]


def test_writes_go_to_the_primary_only_and_nowhere_when_it_is_down() -> None:
    p, r1 = node("primary"), node("replica_1")
    assert names(router(p, r1), "write") == [("primary", "write")]
    p.breaker.trip()
    assert names(router(p, r1), "write") == []


def test_reads_prefer_replicas_then_fall_back_to_the_primary() -> None:
    p, r1 = node("primary"), node("replica_1")
    assert names(router(p, r1), "read") == [
        ("replica_1", "replica"),
        ("primary", "primary-after-replicas"),
    ]


@pytest.mark.parametrize(
    "unfit",
    [
        {"lag_s": 5.1},  # beyond DBX_MAX_REPLICA_LAG_S
        {"lag_s": None},  # lag never read
        {"excluded_reason": "replica not in recovery"},
        {"pool": None},
        {"health": Health(reachable=False, lag_s=0.0)},
    ],
)
def test_an_unfit_replica_is_not_a_candidate(unfit: dict[str, Any]) -> None:
    p, r1 = node("primary"), node("replica_1", **unfit)
    assert names(router(p, r1), "read") == [("primary", "primary-fallback")]


def test_a_replica_whose_breaker_is_open_is_not_a_candidate() -> None:
    p, r1, r2 = node("primary"), node("replica_1"), node("replica_2")
    r1.breaker.trip()
    assert [n for n, _ in names(router(p, r1, r2), "read")] == ["replica_2", "primary"]


def test_with_no_replicas_configured_reads_say_so() -> None:
    assert names(router(node("primary")), "read") == [("primary", "primary-no-replicas")]


def first(r: Router) -> set[str]:
    """The first candidate for a read, over many draws (ties are broken at random)."""
    return {r.routes("read")[0].node.name for _ in range(50)}


def test_the_least_busy_replica_comes_first_then_the_lowest_lag() -> None:
    p = node("primary")
    busy, idle = node("replica_1", in_use=3), node("replica_2", in_use=1)
    assert first(router(p, busy, idle)) == {"replica_2"}
    waiting = node("replica_2", in_use=0, analytics_waiting=2)
    assert first(router(p, node("replica_1", in_use=1), waiting)) == {"replica_1"}
    behind, ahead = node("replica_1", lag_s=2.0), node("replica_2", lag_s=0.3)
    assert first(router(p, behind, ahead)) == {"replica_2"}
    # lags equal to 0.1 s are a tie
    assert first(router(p, node("replica_1", lag_s=0.21), node("replica_2", lag_s=0.18))) == {
        "replica_1",
        "replica_2",
    }


def test_equal_replicas_share_the_reads() -> None:
    r = router(node("primary"), node("replica_1"), node("replica_2"))
    assert first(r) == {"replica_1", "replica_2"}


def test_a_token_puts_replicas_that_replayed_far_enough_first() -> None:
    p = node("primary")
    short = node("replica_1", health=Health(reachable=True, lag_s=0.0, wal_lsn=100))
    far = node("replica_2", health=Health(reachable=True, lag_s=0.0, wal_lsn=500), in_use=3)
    out = names(router(p, short, far), "read", min_lsn=400)
    assert out == [
        ("replica_2", "consistent-replica"),
        ("replica_1", "consistent-replica"),
        ("primary", "primary-after-replicas"),
    ]


def test_a_paused_replica_comes_last_for_a_token() -> None:
    p = node("primary")
    paused = node(
        "replica_1", health=Health(reachable=True, lag_s=0, wal_lsn=9, replay_paused=True)
    )
    live = node("replica_2", health=Health(reachable=True, lag_s=0, wal_lsn=9), in_use=5)
    assert names(router(p, paused, live), "read", min_lsn=9)[0][0] == "replica_2"


def test_analytics_use_replicas_only_unless_the_primary_fallback_is_on() -> None:
    p, r1 = node("primary"), node("replica_1")
    assert names(router(p, r1), "analytics") == [("replica_1", "replica")]
    r1.breaker.trip()
    assert names(router(p, r1), "analytics") == []
    assert names(router(p, r1, fallback=True), "analytics") == [("primary", "primary-fallback")]


def test_analytics_replicas_come_first_whatever_their_load() -> None:
    p = node("primary")
    r1, r2 = node("replica_1"), node("replica_2", in_use=4)
    out = names(router(p, r1, r2, analytics=("replica_2",)), "analytics")
    assert out == [("replica_2", "replica"), ("replica_1", "replica-after-analytics-replicas")]
