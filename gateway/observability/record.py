"""Spans recorded after the fact (SQL statements, slow nested resolvers), and
light live spans (operation, top-level field, loader batch).

Their start, end and attributes are known when they are recorded, so they are
built as finished ``ReadableSpan``s and handed straight to the span
processors: no sampler call, no lock, no ``BoundedAttributes`` copy, no
``on_start``: ~2 us instead of the SDK's ~16 us for ``start_span``/``end``.

The sampling decision is the parent's: such a span is recorded only under a
sampled span of this provider, which is what every built-in sampler decides
for a child (``parentbased_*`` by definition; ``traceidratio`` from the same
trace id; ``always_on`` samples the parent too). Anything else (no parent,
a parent from another provider, a record-only parent) goes through the SDK's
``start_span`` as before.

Live child spans take the same shortcut: under a sampled span of this
provider, ``SpanRecorder.start`` builds a ``LiveSpan``, a ``ReadableSpan``
that is also an API ``Span`` (attributes in a plain dict, no lock, no span
limits object), handed to the processors when it ends: ~3 us instead of
~12 us. The HTTP server span is one too when the sampler samples it
(``start_server`` asks the sampler as the SDK's ``start_span`` does); any
other span goes through the SDK.

Must not: change the span data the SDK would produce (names, kinds, parents,
attributes, status, times).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.util.types import AnyValue, Attributes

_UNSET = Status(StatusCode.UNSET)


def _clean(value: Any) -> Any:
    # What the SDK's attribute container does to the values this gateway
    # sets: a list is stored as a tuple (immutable once set).
    return tuple(value) if isinstance(value, list) else value


class LiveSpan(trace.Span, ReadableSpan):
    """A live span of this provider: a child of a sampled one, or a sampled
    request span (``start_server``) (see module doc).

    Used from one thread (the event loop) while live; once ended it never
    changes again, so the export thread reads it without a lock."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        recorder: SpanRecorder,
        attributes: dict[str, Any],
        links: Sequence[Link],
        kind: SpanKind,
        start_time: int,
    ) -> None:
        # ReadableSpan's fields, set directly (its __init__ would build a
        # default Resource when none is given).
        self._name = name
        self._context = self._ctx = context
        self._parent = parent
        self._kind = kind
        self._resource = cast(Resource, recorder._resource)  # set when the shortcut applies
        self._instrumentation_scope = recorder._scope
        self._instrumentation_info = None
        self._attributes = self._attrs = attributes
        self._events: list[Event] = []
        self._links = tuple(links)
        self._status = _UNSET
        self._start_time = start_time
        self._end_time: int | None = None
        self._processors = recorder._processors
        for processor in self._processors:
            processor.on_start(self)  # type: ignore[arg-type]

    def get_span_context(self) -> SpanContext:
        return self._ctx

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        if self._end_time is None:
            for key, value in attributes.items():
                if value is not None:
                    self._attrs[key] = _clean(value)

    def set_attribute(self, key: str, value: AnyValue) -> None:
        if self._end_time is None and value is not None:
            self._attrs[key] = _clean(value)

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is None:
            clean = {k: _clean(v) for k, v in (attributes or {}).items() if v is not None}
            self._events.append(Event(name, clean, timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self._end_time is None and context.is_valid:
            self._links = (*self._links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # The SDK's rules: OK is final, UNSET is ignored.
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # The type only: an exception's message and stack may hold values.
        event = {"exception.type": type(exception).__qualname__, "exception.escaped": str(escaped)}
        self.add_event("exception", {**event, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time.time_ns()
        for processor in self._processors:
            processor.on_end(self)


class SpanRecorder:
    """Records finished child spans for one tracer provider."""

    def __init__(
        self,
        tracer: Tracer,
        provider: TracerProvider | None,
        processors: Sequence[SpanProcessor],
        *,
        direct: bool = True,
    ) -> None:
        """``processors``: those added to ``provider`` (all of them);
        ``direct=False`` always takes the SDK's path (tests compare the two)."""
        self.tracer = tracer
        self._processors = tuple(processors)
        self._sdk = provider is not None and isinstance(tracer, SdkTracer)
        # Even with no processor at all the span is built: what it costs
        # should not depend on whether anyone exports it.
        self._fast = self._sdk and direct
        self._resource = provider.resource if provider is not None else None
        # The tracer's own scope object (private in the SDK), so the exporter
        # groups these spans with the tracer's others; without it, the SDK path.
        scope = getattr(tracer, "_instrumentation_scope", None)
        self._scope = scope if isinstance(scope, InstrumentationScope) else None
        self._fast = self._fast and self._scope is not None
        self._ids = RandomIdGenerator()
        sampler = getattr(provider, "sampler", None) if provider is not None else None
        self._sampler: Sampler | None = sampler if isinstance(sampler, Sampler) else None

    def _sampled_parent(self, parent: trace.Span) -> SpanContext | None:
        """The parent's context when the shortcut applies (see module doc)."""
        if not self._fast:
            return None
        if isinstance(parent, LiveSpan):
            if parent._end_time is None:
                return parent._ctx
            return None
        if isinstance(parent, SdkSpan) and parent.is_recording():
            pctx = parent.get_span_context()
            return pctx if pctx.trace_flags.sampled else None
        return None

    def _child_context(self, parent: SpanContext) -> SpanContext:
        return SpanContext(
            parent.trace_id,
            self._ids.generate_span_id(),
            False,
            parent.trace_flags,
            parent.trace_state,
        )

    def start(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: dict[str, Any] | None = None,
        links: Sequence[Link] = (),
        start_time: int | None = None,
    ) -> trace.Span:
        """A live span under the current span (end it with ``end()``);
        ``attributes``: a fresh dict, which becomes the span's."""
        pctx = self._sampled_parent(trace.get_current_span())
        if pctx is None:
            return self.tracer.start_span(
                name, kind=kind, attributes=attributes, links=links, start_time=start_time
            )
        return LiveSpan(
            name,
            self._child_context(pctx),
            pctx,
            self,
            {k: _clean(v) for k, v in attributes.items()} if attributes else {},
            links,
            kind,
            start_time if start_time is not None else time.time_ns(),
        )

    def start_server(
        self,
        name: str,
        context: otel_context.Context,
        *,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> trace.Span:
        """The request's span (a root, or the child of an incoming remote
        ``traceparent`` in ``context``): the provider's sampler decides, as in
        the SDK's ``start_span``; a sampled span is a ``LiveSpan``."""
        sampler = self._sampler
        if not self._fast or sampler is None:
            return self.tracer.start_span(name, context=context, kind=kind, attributes=attributes)
        pctx: SpanContext | None = trace.get_current_span(context).get_span_context()
        if pctx is None or not pctx.is_valid:
            pctx = None
            trace_id = self._ids.generate_trace_id()
            random_id = self._ids.is_trace_id_random()
        else:
            trace_id = pctx.trace_id
            random_id = pctx.trace_flags.random_trace_id
        result = sampler.should_sample(context, trace_id, name, kind, attributes, ())
        if result.decision is not Decision.RECORD_AND_SAMPLE:
            # not recorded, or recorded but not sampled: the SDK's own path
            return self.tracer.start_span(name, context=context, kind=kind, attributes=attributes)
        flags = TraceFlags.SAMPLED | (TraceFlags.RANDOM_TRACE_ID if random_id else 0)
        return LiveSpan(
            name,
            SpanContext(
                trace_id,
                self._ids.generate_span_id(),
                False,
                TraceFlags(flags),
                result.trace_state,
            ),
            pctx,
            self,
            {k: _clean(v) for k, v in (result.attributes or {}).items()},
            (),
            kind,
            time.time_ns(),
        )

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
        pctx = self._sampled_parent(parent)
        if pctx is not None:
            span = ReadableSpan(
                name=name,
                context=self._child_context(pctx),
                parent=pctx,
                resource=self._resource,
                attributes=attributes,  # the caller's fresh dict, now the span's
                kind=kind,
                status=status or _UNSET,
                start_time=start_ns,
                end_time=end_ns,
                instrumentation_scope=self._scope,
            )
            for processor in self._processors:
                processor.on_end(span)
            return
        if not self._sdk:
            return  # a no-op tracer would record nothing
        sdk = self.tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            kind=kind,
            start_time=start_ns,
            attributes=attributes,
        )
        if status is not None:
            sdk.set_status(status)
        sdk.end(end_time=end_ns)
