"""Tracing, metrics and logs: beside every room, changing no behaviour.

``Observability`` is built once in the app's lifespan from the ``OTEL_*`` and
``DBX_*`` environment and handed to the parts that report to it. It holds its
own tracer provider (the global one is never set or read), its own metric
registry and its own request context variables.

Must not: change behaviour (a failing exporter never fails a request).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from gateway.config import Settings
from gateway.db.connection import StatementEvent
from gateway.observability.asgi import TracingMiddleware
from gateway.observability.loaders import BatchFn, TracedBatch, TracedDataLoader
from gateway.observability.logs import RequestLogContext, install
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.operation import GraphQLTracing
from gateway.observability.providers import build_tracer_provider
from gateway.observability.record import SpanRecorder

__all__ = ["CommentScope", "Observability", "TracedBatch", "TracedDataLoader"]

log = logging.getLogger("dbx.observability")

CommentScope = Literal["transaction", "statement"]
TRACER_NAME = "dbx-gateway"


class Observability:
    """Interface used by the app, the GraphQL schema and the database layer.

    ``sql_comment_scope``: ``"transaction"`` (default) puts the sqlcommenter
    ``traceparent`` only on each transaction's set-up statement, which is
    never a prepared statement; ``"statement"`` also puts it on every
    statement, which makes each statement's text unique and so defeats
    asyncpg's statement cache (see RUNBOOK.md for the measurement).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        span_exporter: SpanExporter | None = None,
        env: Mapping[str, str] | None = None,
        sql_comment_scope: CommentScope = "transaction",
    ) -> None:
        self.settings = settings
        env = os.environ if env is None else env
        self.provider: TracerProvider | None = build_tracer_provider(env, span_exporter)
        self.tracer: Tracer = (
            self.provider.get_tracer(TRACER_NAME) if self.provider else trace.NoOpTracer()
        )
        self.recorder = SpanRecorder(self.tracer)
        self.metrics = GatewayMetrics()
        self.request_ctx = RequestLogContext()
        self.sql_comment_scope = sql_comment_scope
        self._graphql = GraphQLTracing(
            self.tracer,
            self.metrics,
            self.recorder,
            resolver_min_ms=settings.trace_resolver_min_ms,
            slow_operation_ms=settings.slow_operation_ms,
        )
        self._log_handler: logging.Handler | None = None

    # -- gateway.db.connection.StatementObserver ------------------------------
    def on_statement(self, event: StatementEvent) -> None:
        """Called after every SQL statement: a span recorded after the fact
        under the current context, and the SQL metrics."""
        self.metrics.sql_duration.observe(event.duration_s, event.node, event.intent)
        if event.error is not None:
            self.metrics.sql_errors.inc(event.node, event.intent)
        parent = trace.get_current_span()
        if not parent.is_recording() and parent.get_span_context().is_valid:
            return  # inside an unsampled request: no span to make
        end_ns = event.started_ns + int(event.duration_s * 1e9)
        status = None
        attrs = _statement_attributes(event)
        if event.error is not None:
            attrs["error.type"] = type(event.error).__name__
            status = Status(StatusCode.ERROR, type(event.error).__name__)
        self.recorder.record(
            _statement_name(event.sql),
            parent,
            event.started_ns,
            end_ns,
            attrs,
            kind=SpanKind.CLIENT,
            status=status,
        )

    def sql_comment(self) -> str:
        """The sqlcommenter ``traceparent`` of the current span, or ''. Used on
        each tenant transaction's set-up statement (``gateway.db.transaction``)."""
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return ""
        # Only the sampled bit: level-1 traceparent parsers (sqlcommenter
        # tools) may reject the newer "random trace id" flag.
        flags = ctx.trace_flags & 0x01
        return f" /*traceparent='00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags:02x}'*/"

    def statement_comment(self) -> str:
        """Appended to every statement of a ``TenantConnection``: '' unless
        ``sql_comment_scope="statement"`` (it would defeat the statement cache)."""
        return self.sql_comment() if self.sql_comment_scope == "statement" else ""

    # -- GraphQL ----------------------------------------------------------------
    def strawberry_extensions(self) -> list[Any]:
        """Schema extensions (operation span, slow resolver spans): factories
        for ``strawberry.Schema(extensions=...)``, one instance per operation."""
        return [self._graphql.extension_factory()]

    def traced_batch(self, name: str) -> Callable[[BatchFn], BatchFn]:
        """``obs.traced_batch("aircraft_by_id")(batch_fn)``: a coroutine
        function (what ``aiodataloader`` demands) whose every call is one span
        (see ``loaders.py``); its ``__self__`` is the ``TracedBatch``."""

        def wrap(fn: BatchFn) -> BatchFn:
            return TracedBatch(name, fn, self.recorder, self.metrics).__call__

        return wrap

    def dataloader(self, name: str, batch_fn: BatchFn, **kwargs: Any) -> TracedDataLoader[Any, Any]:
        """An ``aiodataloader.DataLoader`` with a traced batch whose span links
        every span that called ``load()``; ``kwargs`` go to ``DataLoader``."""
        return TracedDataLoader(TracedBatch(name, batch_fn, self.recorder, self.metrics), **kwargs)

    # -- HTTP -------------------------------------------------------------------
    def wrap_asgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """Outermost ASGI middleware: server span, X-Trace-Id, request metrics."""
        return TracingMiddleware(app, self.recorder, self.metrics)

    def bind_request(self, *, request_id: str | None = None, org_id: object | None = None) -> None:
        """Tag the rest of this request's log lines (and its task's children)."""
        self.request_ctx.set(request_id=request_id, org_id=org_id)

    def current_trace_id(self) -> str | None:
        ctx = trace.get_current_span().get_span_context()
        return f"{ctx.trace_id:032x}" if ctx.is_valid else None

    # -- metrics and logs ---------------------------------------------------------
    def inc_missing_partition(self) -> None:
        """An ingest was refused because its month's partition is missing."""
        self.metrics.missing_partition.inc()

    def metrics_text(self, db_nodes: list[dict[str, object]]) -> str:
        """Prometheus exposition text for /metrics (``Database.describe()``)."""
        return self.metrics.render(db_nodes)

    async def node_gauge_loop(self, describe: Callable[[], list[dict[str, object]]]) -> None:
        """Run for the app's life: with several workers, keeps this worker's
        node gauges current for a scrape that reaches another worker."""
        await self.metrics.node_gauge_loop(describe)

    def configure_logging(self, level: int | str = logging.INFO) -> None:
        """JSON lines on stderr with trace, span, request and org ids."""
        self._log_handler = install(self.request_ctx, level)

    def shutdown(self) -> None:
        """Flush and stop exporters (never raises: shutdown must go on)."""
        if self.provider is not None:
            try:
                self.provider.force_flush(timeout_millis=5000)
                self.provider.shutdown()
            except Exception:
                log.warning("tracer provider shutdown failed", exc_info=True)
        if self._log_handler is not None:
            self._log_handler.flush()


@functools.lru_cache(maxsize=1024)
def _statement_name(sql: str) -> str:
    # Low-cardinality span name per the database conventions: the operation.
    # Cached: the same few statements run over and over.
    head = sql[:64].lstrip().split(None, 1)
    verb = head[0].upper() if head else "SQL"
    return verb if verb.isalpha() and len(verb) <= 16 else "SQL"


def _statement_attributes(event: StatementEvent) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "db.system.name": "postgresql",
        "db.query.text": event.sql,
        "db.operation.name": _statement_name(event.sql),
        "db.dbx.node": event.node,
        "db.dbx.intent": event.intent,
        "db.dbx.route_reason": event.reason,
        "db.dbx.pool_wait_s": round(event.pool_wait_s, 6),
    }
    if event.address:
        attrs.update(_server_attributes(event.address))
    if event.lag_s is not None:
        attrs["db.dbx.replica_lag_s"] = event.lag_s
    if event.rows is not None:
        attrs["db.response.returned_rows"] = event.rows
    return attrs


@functools.lru_cache(maxsize=64)
def _server_attributes(address: str) -> dict[str, Any]:
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit():
        return {"server.address": host, "server.port": int(port)}
    return {"server.address": address}
