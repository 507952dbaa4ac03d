"""``Node.describe`` (what ``/readyz`` shows per node): a node that is not
up always says why, also while its circuit breaker cools down after the
node has answered again."""

from __future__ import annotations

from gateway.db.nodes import Breaker, Node


def node(cooldown_s: float = 30.0) -> Node:
    return Node(
        name="replica_1",
        role="replica",
        dsn="postgresql://dbx_gateway:secret-pw@127.0.0.1:6432/dbx_replica_1",
        pool_min_size=0,
        pool_max_size=1,
        statement_cache_setting="auto",
        connect_timeout_s=1.0,
        breaker=Breaker(cooldown_s=cooldown_s),
    )


def test_a_node_never_probed_is_down_and_says_so() -> None:
    d = node().describe()
    assert (d["state"], d["reason"], d["breaker"]) == ("down", "not probed yet", "closed")


def test_a_failed_probe_is_the_reason() -> None:
    n = node()
    n.health.error = "ConnectionRefusedError"
    n.breaker.trip()
    d = n.describe()
    assert (d["state"], d["reason"], d["breaker"]) == ("down", "ConnectionRefusedError", "open")


def test_answering_again_during_the_cooldown_names_the_breaker_and_the_time_left() -> None:
    n = node(cooldown_s=30.0)
    n.breaker.trip()
    n.health.error = None  # the last probe got an answer; the breaker stays open until 30 s
    d = n.describe()
    assert d["state"] == "down" and d["breaker"] == "open"
    reason = str(d["reason"])
    assert reason.startswith("circuit breaker open after 1 failed probe(s)")
    left = float(reason.rsplit(" in ", 1)[1].removesuffix(" s"))
    assert 29.0 <= left <= 30.0


def test_an_up_node_has_no_reason_and_no_password() -> None:
    n = node()
    n.health.reachable = True
    d = n.describe()
    assert (d["state"], d["reason"]) == ("up", None)
    assert "secret-pw" not in repr(d)
