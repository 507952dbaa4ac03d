"""``_client_gone``: how the GraphQL endpoint tells that its client left,
from the ASGI ``receive`` of a request whose body has been read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.api.http import _client_gone


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
