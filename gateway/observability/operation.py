"""The GraphQL operation span and the resolver spans that matter.

Follows the OpenTelemetry GraphQL conventions: the span is named
``{operation.type} {operation.name}`` and carries ``graphql.operation.type``
and ``graphql.operation.name``. The document text is not recorded (inline
literals are values too); ``graphql.document.hash`` (sha256, first 16 bytes in
hex) identifies it instead. No variable, argument or result value is ever set
on a span.

Resolver spans: every top-level field gets a live span (SQL and loader spans
under it nest there). A nested resolver costs two clock reads; only when it
took longer than ``trace_resolver_min_ms`` is a span recorded after the fact,
with its real start and end times and ``graphql.field.path``. Time spent
waiting on a traced loader's batch is not the resolver's: the batch has its
own span, linked to the waiting field, so a list of 50 items that wait on one
slow batch gives that batch span, not 50 resolver spans. A resolver slow on
its own account (its own SQL, its own work) is recorded as before, with
``dbx.graphql.loader_wait_ms`` when it also waited on a batch.

Must not: change what a resolver returns or raises.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from strawberry.extensions import SchemaExtension

from gateway.observability.loaders import LOADER_WAIT, LoaderWait
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.record import SpanRecorder

if TYPE_CHECKING:
    from graphql import GraphQLResolveInfo

    Info = GraphQLResolveInfo[Any]

log = logging.getLogger("dbx.observability")

MAX_OPERATION_LABEL = 64


class GraphQLTracing:
    """Per-app state shared by every request's extension instance."""

    def __init__(
        self,
        tracer: Tracer,
        metrics: GatewayMetrics,
        recorder: SpanRecorder,
        *,
        resolver_min_ms: float,
        slow_operation_ms: float,
    ) -> None:
        self.tracer = tracer
        self.metrics = metrics
        self.recorder = recorder
        self.resolver_min_ns = int(resolver_min_ms * 1_000_000)
        self.slow_operation_s = slow_operation_ms / 1000
        # Wall-clock time from the monotonic clock: one clock read per resolver.
        self.wall0_ns = time.time_ns()
        self.perf0_ns = time.perf_counter_ns()

    def extension_factory(self) -> Callable[[], SchemaExtension]:
        return partial(OperationTracing, tracing=self)

    def wall_ns(self, perf_ns: int) -> int:
        return self.wall0_ns + (perf_ns - self.perf0_ns)


def document_hash(query: str | None) -> str:
    # Clients send the same few documents over and over: short ones are
    # remembered (bounded, so odd documents cannot pin much memory).
    if query is not None and len(query) <= 16_384:
        return _short_document_hash(query)
    return _sha(query or "")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_short_document_hash = functools.lru_cache(maxsize=512)(_sha)


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    return name[:MAX_OPERATION_LABEL]


def field_path(info: Info) -> str:
    return ".".join(str(key) for key in info.path.as_list())


class OperationTracing(SchemaExtension):
    """Built by Strawberry for each operation (``strawberry_extensions()``)."""

    def __init__(self, *, tracing: GraphQLTracing, execution_context: Any = None) -> None:
        self.tracing = tracing
        self.min_ns = tracing.resolver_min_ns
        if execution_context is not None:
            self.execution_context = execution_context

    def on_operation(self) -> Iterator[None]:
        t = self.tracing
        p0 = time.perf_counter()
        self._tops: dict[str | int, _TopField] = {}
        self._executed = False
        span = t.recorder.start("graphql", kind=SpanKind.INTERNAL)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            otel_context.detach(token)
            self._end_top_fields()
            self._finish(span, time.perf_counter() - p0)

    def on_execute(self) -> Iterator[None]:
        self._executed = True
        try:
            yield
        finally:
            self._end_top_fields()

    def _finish(self, span: trace.Span, elapsed: float) -> None:
        ec = self.execution_context
        t = self.tracing
        name = ec.operation_name
        try:
            op_type = ec.operation_type.value
        except Exception:  # no document, or the named operation is absent
            op_type = "unknown"
        errors = ec.pre_execution_errors or (ec.result.errors if ec.result else None)
        outcome = ("error" if self._executed else "rejected") if errors else "ok"
        label = operation_label(name)
        span.update_name(f"{op_type} {name}" if name else op_type)
        if span.is_recording():
            # One set_attributes call: each set_attribute takes the span's lock.
            attrs: dict[str, Any] = {"graphql.operation.type": op_type}
            if name:
                attrs["graphql.operation.name"] = name[:200]
            attrs["graphql.document.hash"] = document_hash(ec.query)
            attrs["dbx.graphql.outcome"] = outcome
            if outcome != "ok":
                errors = errors or []
                attrs["dbx.graphql.error_count"] = len(errors)
                attrs["dbx.graphql.error_codes"] = sorted({_code(e) for e in errors})
                span.set_status(Status(StatusCode.ERROR, outcome))
            span.set_attributes(attrs)
        span.end()
        t.metrics.operations.inc(label, op_type, outcome)
        t.metrics.operation_duration.observe(elapsed, label, op_type)
        if elapsed >= t.slow_operation_s:
            t.metrics.slow_operations.inc(label, op_type)
            log.warning(
                "slow graphql operation",
                extra={
                    "operation": label,
                    "operation_type": op_type,
                    "duration_ms": round(elapsed * 1000, 1),
                    "threshold_ms": t.slow_operation_s * 1000,
                    "document_hash": document_hash(ec.query),
                },
            )

    # -- resolvers ---------------------------------------------------------
    # A top-level field's span stays open until execution ends, and ends at
    # the last end of the nested resolvers under it: graphql-core resolves a
    # field's children after its resolver has returned, so the resolver's own
    # return would cut the span short of the work it caused.
    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: Info,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if info.path.prev is None:
            return self._top_level(_next, root, info, args, kwargs)
        p0 = time.perf_counter_ns()
        result = _next(root, info, *args, **kwargs)
        if isawaitable(result):
            return self._nested(result, info)
        p1 = time.perf_counter_ns()
        if p1 - p0 >= self.min_ns:
            self._record(info, p0, p1, None, self._top_of(info))
        return result

    def _top_of(self, info: Info) -> _TopField | None:
        path = info.path
        while path.prev is not None:
            path = path.prev
        return self._tops.get(path.key)

    async def _nested(self, result: Awaitable[Any], info: Info) -> Any:
        # Runs the resolver under its top-level field's span, so its loader
        # batches and SQL statements nest there and not under the operation.
        # The clock starts when the coroutine first runs: graphql-core creates
        # a list's resolver coroutines long before the loop gets to them, and
        # that queueing is not the resolver's time.
        p0 = time.perf_counter_ns()
        top = self._top_of(info)
        token = otel_context.attach(top.context) if top is not None else None
        wait = LoaderWait()
        wait_token = LOADER_WAIT.set(wait)
        error: BaseException | None = None
        try:
            return await result
        except BaseException as exc:
            error = exc
            raise
        finally:
            p1 = time.perf_counter_ns()
            LOADER_WAIT.reset(wait_token)
            if top is not None and p1 > top.last_ns:
                top.last_ns = p1
            if p1 - p0 - wait.ns >= self.min_ns:
                self._record(info, p0, p1, error, top, wait.ns)
            if token is not None:
                otel_context.detach(token)

    def _record(
        self,
        info: Info,
        p0: int,
        p1: int,
        error: BaseException | None,
        top: _TopField | None,
        loader_wait_ns: int = 0,
    ) -> None:
        t = self.tracing
        parent_type, field = info.parent_type.name, info.field_name
        t.metrics.resolver_duration.observe((p1 - p0) / 1e9, parent_type, field)
        attrs: dict[str, Any] = {
            "graphql.field.name": field,
            "graphql.field.parent_type": parent_type,
            "graphql.field.path": field_path(info),
        }
        if loader_wait_ns:
            attrs["dbx.graphql.loader_wait_ms"] = round(loader_wait_ns / 1e6, 3)
        t.recorder.record(
            f"resolve {parent_type}.{field}",
            top.span if top is not None else trace.get_current_span(),
            t.wall_ns(p0),
            t.wall_ns(p1),
            attrs,
            status=None if error is None else Status(StatusCode.ERROR, type(error).__name__),
        )

    async def _top_level(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: Info,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        t = self.tracing
        parent_type, field = info.parent_type.name, info.field_name
        p0 = time.perf_counter_ns()
        span = t.recorder.start(
            f"resolve {parent_type}.{field}",
            start_time=t.wall_ns(p0),
            attributes={
                "graphql.field.name": field,
                "graphql.field.parent_type": parent_type,
                "graphql.field.path": field_path(info),
            },
        )
        top = _TopField(span, trace.set_span_in_context(span), parent_type, field, p0)
        self._tops[info.path.key] = top
        token = otel_context.attach(top.context)
        try:
            result = _next(root, info, *args, **kwargs)
            if isawaitable(result):
                result = await result
            return result
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            otel_context.detach(token)
            top.last_ns = max(top.last_ns, time.perf_counter_ns())

    def _end_top_fields(self) -> None:
        t = self.tracing
        tops, self._tops = self._tops, {}
        for top in tops.values():
            top.span.end(end_time=t.wall_ns(top.last_ns))
            t.metrics.resolver_duration.observe(
                (top.last_ns - top.p0) / 1e9, top.parent_type, top.field
            )


class _TopField:
    __slots__ = ("span", "context", "parent_type", "field", "p0", "last_ns")

    def __init__(
        self, span: trace.Span, context: otel_context.Context, parent_type: str, field: str, p0: int
    ) -> None:
        self.span = span
        self.context = context
        self.parent_type = parent_type
        self.field = field
        self.p0 = p0
        self.last_ns = p0


def _code(error: Any) -> str:
    ext = getattr(error, "extensions", None) or {}
    code = ext.get("code") if isinstance(ext, dict) else None
    return str(code) if code else "UNCLASSIFIED"
