"""``_client_gone``: how the GraphQL endpoint tells that its client left,
from the ASGI ``receive`` of a request whose body has been read; and
``acquire_unless_gone``, the analytics slot wait that uses it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.api.http import _client_gone
from gateway.db.admission import acquire_unless_gone, unless_gone
from gateway.errors import ClientClosedRequest


def receiver(*messages: dict[str, Any]) -> Any:
    """``receive`` giving ``messages``, then blocking (a client that stays)."""
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def test_a_disconnect_after_the_body_means_gone() -> None:
    gone = _client_gone(receiver({"type": "http.disconnect"}))
    await asyncio.wait_for(gone(), 1)


async def test_a_get_request_empty_body_comes_first() -> None:
    get = receiver(
        {"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}
    )
    await asyncio.wait_for(_client_gone(get)(), 1)


@pytest.mark.parametrize(
    "messages",
    [
        (),  # the client stays
        # a server that answers every receive with an empty request cannot tell
        tuple({"type": "http.request", "body": b"", "more_body": False} for _ in range(50)),
    ],
)
async def test_a_client_that_stays_is_never_gone(messages: tuple[dict[str, Any], ...]) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_client_gone(receiver(*messages))(), 0.2)


# -- the slot wait that uses it (gateway.db.admission) --------------------------


async def _never() -> None:
    await asyncio.Event().wait()


async def test_the_slot_wins_when_it_frees_first() -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()
    asyncio.get_running_loop().call_later(0.05, slots.release)
    await asyncio.wait_for(acquire_unless_gone(slots, _never), 1)
    assert slots.locked()  # held by the caller now


async def test_a_client_leaving_first_ends_the_wait_and_takes_no_slot() -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()
    left = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, left.set)
    with pytest.raises(ClientClosedRequest):
        await asyncio.wait_for(acquire_unless_gone(slots, left.wait), 1)
    slots.release()
    assert not slots.locked()  # the one slot is free: nothing was kept for nobody


async def test_a_failing_watch_waits_for_the_slot() -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()

    async def broken() -> None:
        raise RuntimeError("receive failed")

    asyncio.get_running_loop().call_later(0.1, slots.release)
    await asyncio.wait_for(acquire_unless_gone(slots, broken), 1)
    assert slots.locked()


async def test_a_timeout_while_waiting_keeps_no_slot() -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await acquire_unless_gone(slots, _never)
    slots.release()
    await asyncio.sleep(0)
    assert not slots.locked()


# -- the work of a long analytics transaction ----------------------------------


async def test_work_that_ends_first_gives_its_answer() -> None:
    assert await unless_gone(asyncio.sleep(0.01, result=7), _never) == 7


async def test_a_client_leaving_first_cancels_the_work() -> None:
    cancelled = asyncio.Event()

    async def work() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    left = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, left.set)
    with pytest.raises(ClientClosedRequest):
        await asyncio.wait_for(unless_gone(work(), left.wait), 1)
    assert cancelled.is_set()


async def test_a_failing_watch_lets_the_work_finish() -> None:
    async def broken() -> None:
        raise RuntimeError("receive failed")

    assert await unless_gone(asyncio.sleep(0.05, result="done"), broken) == "done"


async def test_work_errors_pass_through() -> None:
    async def fails() -> None:
        raise ValueError("statement failed")

    with pytest.raises(ValueError):
        await unless_gone(fails(), _never)
