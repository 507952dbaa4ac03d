"""``eventually``, the suites' one deadline poll: it returns the first truthy
value of a sync or async check, and fails naming what it waited for."""

from __future__ import annotations

import time

import pytest

from tests.support.wait import eventually


async def test_returns_the_first_truthy_value_of_a_sync_check() -> None:
    calls = iter([0, None, "", 7, 8])
    assert await eventually(lambda: next(calls), 5, "a value", period_s=0) == 7


async def test_awaits_an_async_check() -> None:
    seen: list[int] = []

    async def check() -> bool:
        seen.append(1)
        return len(seen) == 3

    assert await eventually(check, 5, "three calls", period_s=0) is True
    assert len(seen) == 3


async def test_fails_after_the_deadline_naming_what_and_the_last_value() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the pool drained not reached within 0.1 s .*0\)"):
        await eventually(lambda: 0, 0.1, "the pool drained")
    assert time.monotonic() - started >= 0.1
