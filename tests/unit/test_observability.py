"""HTTP middleware, SQL statement spans, SQL comments, /metrics, JSON logs and
providers of ``gateway.observability`` (no database)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.config import Settings
from gateway.db.connection import StatementEvent
from gateway.observability import Observability
from gateway.observability.logs import JsonFormatter
from gateway.observability.providers import build_tracer_provider, sampler_from_env


def make_settings() -> Settings:
    return Settings(primary_dsn="postgresql://unused@127.0.0.1:1/none", jwt_secret="x" * 40)


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"

FAMILIES = {
    "dbx_http_requests": "counter",
    "dbx_http_request_duration_seconds": "histogram",
    "dbx_graphql_operations": "counter",
    "dbx_graphql_operation_duration_seconds": "histogram",
    "dbx_resolver_duration_seconds": "histogram",
    "dbx_loader_batch_duration_seconds": "histogram",
    "dbx_sql_duration_seconds": "histogram",
    "dbx_sql_errors": "counter",
    "dbx_ingest_missing_partition": "counter",
    "dbx_slow_operations": "counter",
    "dbx_node_up": "gauge",
    "dbx_breaker_open": "gauge",
    "dbx_replica_lag_seconds": "gauge",
    "dbx_pool_size": "gauge",
    "dbx_pool_in_use": "gauge",
    "dbx_pool_idle": "gauge",
    "dbx_pool_waiting": "gauge",
    "dbx_analytics_waiting": "gauge",
    "dbx_replicas_available": "gauge",
}


def observability(env: dict[str, str] | None = None) -> tuple[Observability, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    obs = Observability(
        make_settings(), span_exporter=exporter, env=env or {"OTEL_TRACES_SAMPLER": "always_on"}
    )
    return obs, exporter


def app_for(obs: Observability) -> Any:
    async def flight(request: Request) -> PlainTextResponse:
        return PlainTextResponse(obs.sql_comment())

    async def crash(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/v1/flights/{flight_id}", flight), Route("/crash", crash)])
    return obs.wrap_asgi(app)


async def get(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers or {})


async def test_server_span_continues_traceparent_and_sets_trace_id() -> None:
    obs, exporter = observability()
    app = app_for(obs)
    resp = await get(app, f"/v1/flights/{uuid.uuid4()}?variables=secret", {"traceparent": PARENT})
    assert resp.headers["x-trace-id"] == TRACE
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /v1/flights/{flight_id}"
    assert span.context.trace_id == int(TRACE, 16)
    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/flights/{flight_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert "secret" not in json.dumps(dict(span.attributes))
    # the app saw the server span as current: its sqlcommenter comment names it
    assert resp.text == (f" /*traceparent='00-{TRACE}-{span.context.span_id:016x}-01'*/")
    assert obs.metrics.http_requests.value("/v1/flights/{flight_id}", "GET", "200") == 1


async def test_trace_id_header_when_not_sampled_and_on_errors() -> None:
    obs, exporter = observability({"OTEL_TRACES_SAMPLER": "always_off"})
    app = app_for(obs)
    resp = await get(app, "/crash")
    assert resp.status_code == 500
    assert len(resp.headers["x-trace-id"]) == 32 and int(resp.headers["x-trace-id"], 16)
    resp = await get(app, "/nowhere")
    assert resp.status_code == 404 and len(resp.headers["x-trace-id"]) == 32
    assert exporter.get_finished_spans() == ()
    assert obs.metrics.http_requests.value("/crash", "GET", "500") == 1
    assert obs.metrics.http_requests.value("unmatched", "GET", "404") == 1


async def test_trace_id_header_with_sdk_disabled() -> None:
    obs = Observability(make_settings(), env={"OTEL_SDK_DISABLED": "true"})
    assert obs.provider is None
    resp = await get(app_for(obs), "/v1/flights/x")
    assert len(resp.headers["x-trace-id"]) == 32
    resp = await get(app_for(obs), "/v1/flights/x", {"traceparent": PARENT})
    assert resp.headers["x-trace-id"] == TRACE
    obs.shutdown()


def event(**kw: Any) -> StatementEvent:
    base: dict[str, Any] = {
        "sql": "select * from dbx_aviation.flights where org_id = $1 and id = $2",
        "node": "replica_2",
        "address": "10.0.0.7:5432",
        "intent": "read",
        "reason": "least_lag",
        "lag_s": 0.25,
        "pool_wait_s": 0.0015,
        "started_ns": 1_700_000_000_000_000_000,
        "duration_s": 0.004,
        "rows": 3,
        "error": None,
    }
    base.update(kw)
    return StatementEvent(**base)


def test_statement_span_is_child_with_node_and_address() -> None:
    obs, exporter = observability()
    with obs.tracer.start_as_current_span("loader") as parent:
        obs.on_statement(event())
    (span, _) = exporter.get_finished_spans()
    assert span.name == "SELECT"
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.start_time == 1_700_000_000_000_000_000
    assert span.end_time == 1_700_000_000_004_000_000
    assert dict(span.attributes or {}) == {
        "db.system.name": "postgresql",
        "db.query.text": "select * from dbx_aviation.flights where org_id = $1 and id = $2",
        "db.operation.name": "SELECT",
        "db.dbx.node": "replica_2",
        "db.dbx.intent": "read",
        "db.dbx.route_reason": "least_lag",
        "db.dbx.pool_wait_s": 0.0015,
        "server.address": "10.0.0.7",
        "server.port": 5432,
        "db.dbx.replica_lag_s": 0.25,
        "db.response.returned_rows": 3,
    }
    assert obs.metrics.sql_duration.count("replica_2", "read") == 1


def test_statement_error_status_and_metric() -> None:
    obs, exporter = observability()
    obs.on_statement(event(error=TimeoutError("value 42 leaked?"), rows=None, address=None))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes is not None and span.attributes["error.type"] == "TimeoutError"
    assert "42" not in str(span.status.description)
    assert "server.address" not in span.attributes
    assert obs.metrics.sql_errors.value("replica_2", "read") == 1


def test_statement_in_an_unsampled_request_makes_no_span_but_counts() -> None:
    obs, exporter = observability(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    )
    with obs.tracer.start_as_current_span("request") as request:
        assert request.get_span_context().is_valid and not request.is_recording()
        obs.on_statement(event())
    assert exporter.get_finished_spans() == ()
    assert obs.metrics.sql_duration.count("replica_2", "read") == 1


def test_sql_comment_only_with_a_span_and_statement_scope() -> None:
    obs, _ = observability()
    assert obs.sql_comment() == "" and obs.statement_comment() == ""
    with obs.tracer.start_as_current_span("x") as span:
        ctx = span.get_span_context()
        expected = f" /*traceparent='00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01'*/"
        assert obs.sql_comment() == expected
        assert obs.statement_comment() == ""  # default scope: the set-up statement only
    per_statement = Observability(
        make_settings(), env={"OTEL_TRACES_SAMPLER": "always_on"}, sql_comment_scope="statement"
    )
    with per_statement.tracer.start_as_current_span("x"):
        assert per_statement.statement_comment() == per_statement.sql_comment() != ""


NODES: list[dict[str, object]] = [
    {
        "name": "primary",
        "role": "primary",
        "state": "up",
        "breaker": "closed",
        "lag_s": None,
        "pool": {"size": 8, "in_use": 3, "idle": 5, "waiting": 0},
    },
    {
        "name": "replica_1",
        "role": "replica",
        "state": "down",
        "breaker": "open",
        "lag_s": 1.5,
        "pool": {"size": 2, "in_use": 2, "idle": 0, "waiting": 4, "analytics_waiting": 3},
    },
    {
        "name": "replica_2",
        "role": "replica",
        "state": "up",
        "breaker": "closed",
        "lag_s": 0.0,
        "pool": {"size": 0, "in_use": 0, "idle": 0, "waiting": 0},
    },
]


def test_metrics_text_parses_and_has_every_family() -> None:
    obs, _ = observability()
    obs.metrics.http_requests.inc("/graphql", "POST", "200")
    obs.metrics.http_duration.observe(0.02, "/graphql", "POST")
    obs.metrics.operations.inc('Weird"Name\n', "query", "ok")
    obs.metrics.operation_duration.observe(0.3, "Q", "query")
    obs.metrics.resolver_duration.observe(0.01, "Query", "fleet")
    obs.metrics.loader_batch_duration.observe(0.01, "aircraft_by_id")
    obs.metrics.slow_operations.inc("Q", "query")
    obs.on_statement(event())
    obs.on_statement(event(error=RuntimeError()))
    obs.inc_missing_partition()
    text = obs.metrics_text(NODES)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, name
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("dbx_node_up", (("node", "replica_1"), ("role", "replica")))] == 0
    assert samples[("dbx_breaker_open", (("node", "replica_1"),))] == 1
    assert samples[("dbx_replica_lag_seconds", (("node", "replica_1"),))] == 1.5
    assert samples[("dbx_pool_waiting", (("node", "replica_1"),))] == 4
    assert samples[("dbx_analytics_waiting", (("node", "replica_1"),))] == 3
    assert samples[("dbx_replicas_available", ())] == 1
    assert samples[("dbx_ingest_missing_partition_total", ())] == 1
    assert samples[("dbx_sql_errors_total", (("intent", "read"), ("node", "replica_2")))] == 1
    bucket = (
        "dbx_sql_duration_seconds_bucket",
        (("intent", "read"), ("le", "+Inf"), ("node", "replica_2")),
    )
    assert samples[bucket] == 2
    assert (
        samples[
            (
                "dbx_graphql_operations_total",
                (("operation", 'Weird"Name\n'), ("outcome", "ok"), ("type", "query")),
            )
        ]
        == 1
    )


def test_metric_series_are_capped() -> None:
    obs, _ = observability()
    for i in range(3000):
        obs.metrics.operations.inc(f"op{i}", "query", "ok")
    assert len(obs.metrics.operations.series) <= 2001
    assert obs.metrics.operations.value("other", "other", "other") == 1000


def test_json_log_line_carries_ids_and_drops_unsafe_extras() -> None:
    obs, _ = observability()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(obs.request_ctx))
    logger = logging.getLogger("dbx.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    org = uuid.uuid4()
    try:
        with (
            obs.request_ctx.bind(request_id="req-1", org_id=org),
            obs.tracer.start_as_current_span("s") as span,
        ):
            logger.info(
                "done %s",
                "x",
                extra={"node": "primary", "variables": {"token": "eyJhbGciOi"}, "token": "eyJ"},
            )
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    ctx = span.get_span_context()
    assert first["message"] == "done x" and first["level"] == "info"
    assert first["logger"] == "dbx.test.json" and first["time"].endswith("Z")
    assert first["trace_id"] == f"{ctx.trace_id:032x}" and first["span_id"] == f"{ctx.span_id:016x}"
    assert first["request_id"] == "req-1" and first["org_id"] == str(org)
    assert first["node"] == "primary"
    assert "variables" not in first and "token" not in first and "eyJ" not in stream.getvalue()
    assert second["request_id"] is None and second["trace_id"] is None


def test_providers_from_env() -> None:
    sampler = sampler_from_env(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert isinstance(sampler, ParentBasedTraceIdRatio)
    assert "0.25" in sampler.get_description()
    provider = build_tracer_provider(
        {"OTEL_SERVICE_NAME": "gw-test", "OTEL_TRACES_EXPORTER": "console"}
    )
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "gw-test"
    provider.shutdown()
    default = build_tracer_provider({})
    assert default is not None and default.resource.attributes["service.name"] == "dbx-gateway"
    default.shutdown()
    otlp = build_tracer_provider({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert otlp is not None
    processors = otlp._active_span_processor._span_processors  # noqa: SLF001
    assert [type(p).__name__ for p in processors] == ["BatchSpanProcessor"]
    otlp.shutdown()  # an unreachable collector must not hang or raise here
