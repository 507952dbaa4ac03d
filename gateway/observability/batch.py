"""A batching span processor for the OTLP exporter, cheap per span.

The SDK's ``BatchSpanProcessor`` checks ``os.getpid()`` on every ended span
(to notice a fork); that system call is slow under some sandboxes and was the
largest single cost of ending a span in the gateway (measured with py-spy).
Here a fork is noticed once, by ``os.register_at_fork``, and ending a span is
a deque append. The behaviour is otherwise the SDK's: a bounded queue that
drops the oldest spans when full, an export thread woken when a batch is
ready or after the schedule delay, everything exported at shutdown.

With the gateway's own OTLP exporter (``otlp.py``), a span is encoded when
it ends, on the thread that ends it, while its data is still in the CPU's
caches; the export thread then only joins bytes and sends them (its CPU per
span fell from ~14 us to ~3 us under ``bench.tracing_bench`` load, and the
worker's CPU per request with tracing on came closer to tracing off).

Must not: block a request (ending a span never waits for the export thread)
or raise from ``on_end``.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import weakref

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from gateway.observability.otlp import EncodedSpan, FastOTLPSpanExporter, SpanEncoder

log = logging.getLogger("dbx.observability")

SHUTDOWN_WAIT_S = 5.0


class BatchExportProcessor(SpanProcessor):
    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int,
        schedule_delay_millis: int,
        max_export_batch_size: int,
    ) -> None:
        self.exporter = exporter
        self._max_queue = max_queue_size
        self._batch = max_export_batch_size
        self._delay_s = schedule_delay_millis / 1000
        self._queue: collections.deque[ReadableSpan | EncodedSpan] = collections.deque()
        self._encoder = (
            SpanEncoder()
            if isinstance(exporter, FastOTLPSpanExporter) and exporter.can_export_encoded
            else None
        )
        self._lock = threading.Lock()  # one export at a time (thread or flush)
        self._wake = threading.Event()
        self._stopped = False
        self._flushes: list[threading.Event] = []
        self.dropped = 0
        self._thread = self._start()
        ref = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._work, name="dbx-span-export", daemon=True)
        thread.start()
        return thread

    def _after_fork(self) -> None:
        # The parent's queue and thread do not belong to the child.
        self._queue.clear()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = self._start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if self._stopped or ctx is None or not ctx.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self._max_queue:
            queue.popleft()  # the oldest, as the SDK's processor drops
            self.dropped += 1
        if self._encoder is not None:
            try:
                queue.append(self._encoder.encode_span(span))
            except Exception:  # exported by the general path instead
                log.exception("span encoding failed")
                queue.append(span)
        else:
            queue.append(span)
        if len(queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    def _work(self) -> None:
        while not self._stopped:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            if self._stopped:
                break
            flushes, self._flushes = self._flushes, []
            self._export(everything=bool(flushes))
            for done in flushes:
                done.set()
        self._export(everything=True)

    def _export(self, *, everything: bool) -> None:
        """Full batches (at least one, possibly partial, batch), or all."""
        with self._lock:
            first = True
            while self._queue and (everything or first or len(self._queue) >= self._batch):
                first = False
                n = min(self._batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                try:
                    self._send(batch)
                except Exception:  # an exporter failure never reaches requests
                    log.exception("span export failed")

    def _send(self, batch: list[ReadableSpan | EncodedSpan]) -> None:
        encoded = [item for item in batch if type(item) is tuple]
        if encoded and isinstance(self.exporter, FastOTLPSpanExporter):
            self.exporter.export_encoded(encoded)
        spans = [item for item in batch if isinstance(item, ReadableSpan)]
        if spans:
            self.exporter.export(spans)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Everything queued now is exported by the export thread; False
        when that took longer than the timeout (a slow collector)."""
        if self._stopped or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        return done.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        """The export thread exports what is queued and stops; a collector
        that does not answer within ``SHUTDOWN_WAIT_S`` is given up on (the
        exporter's shutdown ends its retries)."""
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        self._thread.join(SHUTDOWN_WAIT_S)
        self.exporter.shutdown()
