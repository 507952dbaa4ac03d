"""``SharedDataLoader``: an ``aiodataloader.DataLoader`` whose futures survive
the cancellation of one of their waiters.

A loader hands the same future to every field that asks for the same key
(its cache). When graphql-core nulls a parent because one field failed, it
cancels the sibling fields still running; a task cancelled while awaiting a
future cancels that future, and every other field waiting on the same key
(under another alias, another parent) then got ``CancelledError`` instead of
its value, which escaped the whole request. Each waiter here awaits a shield
of the shared future, so a cancellation stays with the waiter it was meant for.

Must not: change the keys, values or errors of a batch.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiodataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")


class SharedDataLoader(DataLoader[K, V]):
    def load(self, key: K) -> Any:
        future = super().load(key)
        return future if future.done() else asyncio.shield(future)
