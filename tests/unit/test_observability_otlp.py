"""Spans leave through the SDK's ``BatchSpanProcessor`` and OTLP/HTTP
exporter, sized from the gateway's environment; spans recorded after the fact
keep their times, parent and status (no database)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.config import Settings
from gateway.observability import Observability
from tests.support.wait import eventually_sync


def make_settings() -> Settings:
    return Settings(primary_dsn="postgresql://unused@127.0.0.1:1/none", jwt_secret="x" * 40)


class Sink:
    """An OTLP/HTTP endpoint that keeps every request it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[ProtoSpan]:
        return [
            span
            for request in list(self.requests)
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.server.shutdown()
    s.server.server_close()


def attrs(kvs: list[KeyValue]) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in kvs:
        field = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, field) if field else None
    return out


def test_spans_reach_the_collector_through_the_sdk_path(sink: Sink) -> None:
    obs = Observability(
        make_settings(),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SERVICE_NAME": "gw-otlp-test",
        },
    )
    with obs.tracer.start_as_current_span("POST /graphql", kind=SpanKind.SERVER) as server:
        live = obs.recorder.start("loader aircraft_by_id", attributes={"dbx.loader.batch_size": 2})
        live.end()
        obs.recorder.record(
            "SELECT",
            server,
            1_000,
            2_000,
            {"db.query.text": "select 1", "server.port": 5432, "db.dbx.pool_wait_s": 0.5},
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR, "TimeoutError"),
        )
    obs.shutdown()  # flushes the batch processor
    (request,) = sink.requests
    (resource_spans,) = request.resource_spans
    assert attrs(list(resource_spans.resource.attributes))["service.name"] == "gw-otlp-test"
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "dbx-gateway"
    by_name = {s.name: s for s in scope_spans.spans}
    assert set(by_name) == {"POST /graphql", "loader aircraft_by_id", "SELECT"}
    root, sql = by_name["POST /graphql"], by_name["SELECT"]
    assert by_name["loader aircraft_by_id"].parent_span_id == root.span_id
    assert sql.parent_span_id == root.span_id and sql.trace_id == root.trace_id
    assert sql.kind == ProtoSpan.SPAN_KIND_CLIENT
    assert (sql.start_time_unix_nano, sql.end_time_unix_nano) == (1_000, 2_000)
    assert attrs(list(sql.attributes)) == {
        "db.query.text": "select 1",
        "server.port": 5432,
        "db.dbx.pool_wait_s": 0.5,
    }
    assert (sql.status.code, sql.status.message) == (2, "TimeoutError")  # STATUS_CODE_ERROR


def test_batch_sizes_come_from_the_gateway_environment(sink: Sink) -> None:
    # A batch of 2 goes out as soon as it is full, though the delay is long;
    # the rest waits for the delay or for shutdown.
    obs = Observability(
        make_settings(),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2",
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        },
    )
    for i in range(3):
        obs.tracer.start_span(f"s{i}").end()
    # sooner than BSP_DEFAULTS' 5 s delay
    eventually_sync(lambda: len(sink.spans()) >= 2, 4.0, "two spans exported")
    assert [s.name for s in sink.spans()] == ["s0", "s1"]
    obs.shutdown()
    assert [s.name for s in sink.spans()] == ["s0", "s1", "s2"]


def test_recorded_span_under_an_unsampled_parent_is_not_exported() -> None:
    exporter = InMemorySpanExporter()
    obs = Observability(
        make_settings(),
        span_exporter=exporter,
        env={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
    )
    with obs.tracer.start_as_current_span("request") as request:
        obs.recorder.record("resolve A.b", request, 1, 2, {"graphql.field.path": "a.0.b"})
        child = obs.recorder.start("graphql")
        assert not child.is_recording()
        child.end()
    assert exporter.get_finished_spans() == ()


def test_recorded_span_keeps_its_times_under_a_parent_given_explicitly() -> None:
    exporter = InMemorySpanExporter()
    obs = Observability(
        make_settings(), span_exporter=exporter, env={"OTEL_TRACES_SAMPLER": "always_on"}
    )
    top = obs.recorder.start("resolve Query.fleet", start_time=100)
    with obs.tracer.start_as_current_span("elsewhere"):
        # the parent is the top-level field, not the current span
        obs.recorder.record("resolve A.b", top, 300, 400, {"graphql.field.path": "fleet.0.b"})
    top.end(end_time=500)
    recorded, _, parent = exporter.get_finished_spans()
    assert recorded.name == "resolve A.b"
    assert recorded.parent is not None and recorded.parent.span_id == parent.context.span_id
    assert (recorded.start_time, recorded.end_time) == (300, 400)
    assert (parent.start_time, parent.end_time) == (100, 500)
    assert recorded.status.status_code is StatusCode.UNSET
    assert dict(recorded.attributes or {}) == {"graphql.field.path": "fleet.0.b"}
    assert trace.get_current_span() is trace.INVALID_SPAN
