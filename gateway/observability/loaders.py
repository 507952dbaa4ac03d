"""One span per loader batch, linked to the spans that waited on it.

``obs.traced_batch("aircraft_by_id")(batch_fn)`` wraps a batch function: each
call runs in a span ``loader aircraft_by_id`` (its SQL spans nest under it)
with ``dbx.loader.name`` and ``dbx.loader.batch_size``. Its parent is the
context of the first ``load()`` of the batch (aiodataloader schedules the
dispatch with ``call_soon``, which copies that context).

Links: ``load()`` calls from other resolvers (other top-level fields, other
list items running in their own tasks) are seen only if the loader notes them;
``TracedDataLoader`` (an ``aiodataloader.DataLoader``) does, recording the
span current at each ``load()``. A plain loader with a traced batch links to
its parent only. Links are de-duplicated: a list of 50 flights asking for
their aircraft from one top-level field gives one link, not 50.

Waiting time: a nested resolver's span and latency metric (``operation.py``)
count its own time, not the time it waited on a traced loader's batch, which
the batch span shows (with the waiting field linked). ``load()`` called from
such a resolver returns an awaitable that adds its wait to the resolver's
``LoaderWait``; without one it returns the loader's future as it is.

Must not: change the keys, values or errors of a batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, Status, StatusCode

from gateway.dataloader import SharedDataLoader
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.record import SpanRecorder

K = TypeVar("K")
V = TypeVar("V")
BatchFn = Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]

MAX_LINKS = 32


class LoaderWait:
    """Nanoseconds the current nested resolver spent waiting on loader batches."""

    __slots__ = ("ns",)

    def __init__(self) -> None:
        self.ns = 0

    async def timed(self, future: asyncio.Future[Any]) -> Any:
        p0 = time.perf_counter_ns()
        try:
            return await future
        finally:
            self.ns += time.perf_counter_ns() - p0


# Set by the resolver tracing around each nested resolver (its own task's context).
LOADER_WAIT: ContextVar[LoaderWait | None] = ContextVar("dbx_loader_wait", default=None)


class TracedBatch:
    """A batch function wrapped in a span; also the place waiters are noted."""

    def __init__(
        self, name: str, fn: BatchFn, recorder: SpanRecorder, metrics: GatewayMetrics
    ) -> None:
        self.name = name
        self.fn = fn
        self.recorder = recorder
        self.metrics = metrics
        self._waiters: list[SpanContext] = []

    def note_waiter(self) -> None:
        """Remember the span current now as one that waits on the next batch."""
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid and len(self._waiters) < MAX_LINKS * 4:
            self._waiters.append(ctx)

    async def __call__(self, keys: Sequence[Any]) -> Sequence[Any]:
        waiters, self._waiters = self._waiters, []
        parent = trace.get_current_span().get_span_context()
        seen: set[int] = set()
        links: list[Link] = []
        for ctx in (*waiters, parent):
            if ctx.is_valid and ctx.span_id not in seen and len(links) < MAX_LINKS:
                seen.add(ctx.span_id)
                links.append(Link(ctx, {"dbx.link.kind": "waiter"}))
        span = self.recorder.start(
            f"loader {self.name}",
            links=links,
            attributes={"dbx.loader.name": self.name, "dbx.loader.batch_size": len(keys)},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        p0 = time.perf_counter()
        try:
            return await self.fn(keys)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            otel_context.detach(token)
            span.end()
            self.metrics.loader_batch_duration.observe(time.perf_counter() - p0, self.name)


class TracedDataLoader(SharedDataLoader[K, V]):
    """An aiodataloader ``DataLoader`` whose batches are traced and linked to
    every span that called ``load()``. Build with ``obs.dataloader(...)``."""

    def __init__(self, traced: TracedBatch, **kwargs: Any) -> None:
        super().__init__(batch_load_fn=traced.__call__, **kwargs)  # type: ignore[arg-type]
        self._traced = traced

    def load(self, key: K) -> Any:
        cached = self._cache.get(self.get_cache_key(key)) if self.cache else None
        if cached is None or (not cached.done() and self._queue):
            # A cached key waits too while its batch is still queued; a done
            # one waits on nothing.
            self._traced.note_waiter()
        future = super().load(key)
        wait = LOADER_WAIT.get()
        if wait is None or future.done():
            return future
        return wait.timed(future)
