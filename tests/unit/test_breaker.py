"""``Breaker``: a connection-level failure opens it; only after the
cool-down may a good probe close it; failures are counted until it closes."""

from __future__ import annotations

import time

import pytest

from gateway.db.nodes import Breaker


def test_a_new_breaker_is_closed_and_may_be_probed() -> None:
    b = Breaker(cooldown_s=30.0)
    assert (b.state, b.failures, b.cooldown_left_s()) == ("closed", 0, 0.0)
    assert b.may_probe_close()


def test_a_failure_opens_it_for_the_cooldown() -> None:
    b = Breaker(cooldown_s=30.0)
    b.trip()
    assert (b.state, b.failures) == ("open", 1)
    assert not b.may_probe_close()
    assert 29.0 <= b.cooldown_left_s() <= 30.0


def test_after_the_cooldown_a_probe_may_close_it() -> None:
    b = Breaker(cooldown_s=30.0)
    b.trip()
    b.opened_at = time.monotonic() - 30.0  # as if opened 30 s ago
    assert b.may_probe_close()
    assert b.cooldown_left_s() == 0.0
    assert b.state == "open"  # until the probe closes it
    b.close()
    assert (b.state, b.failures) == ("closed", 0)


def test_closed_by_a_probe_it_may_be_probed_at_once() -> None:
    b = Breaker(cooldown_s=30.0)
    b.trip()
    b.close()  # closed again well within the cool-down
    assert b.may_probe_close()
    assert b.cooldown_left_s() == 0.0


def test_failures_while_open_count_but_do_not_restart_the_cooldown() -> None:
    b = Breaker(cooldown_s=30.0)
    b.trip()
    b.opened_at -= 20.0
    opened = b.opened_at
    b.trip()
    b.trip()
    assert (b.failures, b.opened_at) == (3, opened)
    assert b.cooldown_left_s() == pytest.approx(10.0, abs=1.0)


def test_a_zero_cooldown_may_close_at_once() -> None:
    b = Breaker(cooldown_s=0.0)
    b.trip()
    assert b.may_probe_close()


def test_tripping_again_after_closing_starts_a_new_cooldown() -> None:
    b = Breaker(cooldown_s=30.0)
    b.trip()
    b.opened_at -= 60.0
    b.close()
    b.trip()
    assert (b.failures, b.may_probe_close()) == (1, False)
