"""Where the gateway's spans are made: live spans (HTTP server, operation,
top-level field, loader batch) and spans recorded after the fact (SQL
statements, slow nested resolvers), all through the tracer's public API.

A span recorded after the fact has its start, end and attributes known when
it is recorded: it is started with its real ``start_time`` under its parent
and ended at once with its real ``end_time``. The provider's sampler decides
every span, as for any other.

Must not: touch the SDK's internals (private fields, span classes), so any
``opentelemetry-sdk`` 1.x serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, Tracer


class SpanRecorder:
    """Starts and records spans for one tracer (a no-op tracer records nothing)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def start(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: dict[str, Any] | None = None,
        links: Sequence[Link] = (),
        start_time: int | None = None,
    ) -> trace.Span:
        """A live span under the current span (end it with ``end()``)."""
        return self.tracer.start_span(
            name, kind=kind, attributes=attributes, links=links, start_time=start_time
        )

    def start_server(
        self,
        name: str,
        context: otel_context.Context,
        *,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> trace.Span:
        """The request's span: a root, or the child of an incoming remote
        ``traceparent`` held in ``context``."""
        return self.tracer.start_span(name, context=context, kind=kind, attributes=attributes)

    def record(
        self,
        name: str,
        parent: trace.Span,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any],
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        status: Status | None = None,
    ) -> None:
        """A finished span under ``parent`` (a span, usually the current one)."""
        span = self.tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            kind=kind,
            attributes=attributes,
            start_time=start_ns,
        )
        if status is not None:
            span.set_status(status)
        span.end(end_time=end_ns)
