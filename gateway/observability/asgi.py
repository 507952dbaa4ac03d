"""The outermost ASGI middleware: the HTTP server span, ``X-Trace-Id`` on every
response, and the request metrics.

Plain ASGI (not ``BaseHTTPMiddleware``) so the span's context is the context
the app runs in. An incoming W3C ``traceparent``/``tracestate`` is continued.
``X-Trace-Id`` is sent even when the span is not sampled (the trace id still
names the request in logs and in SQL comments); with the SDK disabled a random
id is made up per request.

Recorded: method, route template (``/v1/flights/{flight_id}/telemetry``, never
the raw path with ids, as a metric label), status. Never recorded: the query
string (a GET GraphQL request carries its variables there) or any header.

Must not: change the response beyond adding ``x-trace-id``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from random import getrandbits
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.observability.metrics import GatewayMetrics
from gateway.observability.record import SpanRecorder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PROPAGATED = (b"traceparent", b"tracestate")


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class TracingMiddleware:
    def __init__(self, app: ASGIApp, recorder: SpanRecorder, metrics: GatewayMetrics) -> None:
        self.app = app
        self.recorder = recorder
        self.metrics = metrics
        self.propagator = TraceContextTextMapPropagator()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", ())
            if k in _PROPAGATED
        }
        parent = self.propagator.extract(carrier) if carrier else otel_context.Context()
        method = str(scope.get("method", "GET"))
        span = self.recorder.start_server(
            method,
            parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": str(scope.get("path", "")),
                "url.scheme": str(scope.get("scheme", "http")),
            },
        )
        ctx = span.get_span_context()
        if ctx.is_valid:
            trace_id = f"{ctx.trace_id:032x}"
        else:
            pctx = trace.get_current_span(parent).get_span_context()
            # tracing off: a made-up id (the process's PRNG, no system call)
            trace_id = f"{pctx.trace_id:032x}" if pctx.is_valid else f"{getrandbits(128):032x}"
        header = (b"x-trace-id", trace_id.encode())
        status = 500

        async def send_with_trace_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message.get("status", 200))
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(span, parent))
        p0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_trace_id)
        except BaseException as exc:
            status = 500
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            otel_context.detach(token)
            elapsed = time.perf_counter() - p0
            route = route_of(scope)
            if span.is_recording():
                span.update_name(f"{method} {route}" if route != "unmatched" else method)
                # One call: each set_attribute takes the span's lock.
                span.set_attributes({"http.route": route, "http.response.status_code": status})
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
            self.metrics.http_requests.inc(route, method, str(status))
            self.metrics.http_duration.observe(elapsed, route, method)
