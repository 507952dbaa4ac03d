"""Operation, resolver and loader spans on a small schema built here (no DB)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import strawberry
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from strawberry.types import Info

from gateway.config import Settings
from gateway.observability import Observability

SECRET = "s3cr3t-variable-value-7781"
MIN_MS = 15.0


def make_settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "primary_dsn": "postgresql://unused@127.0.0.1:1/none",
        "jwt_secret": "x" * 40,
        "trace_resolver_min_ms": MIN_MS,
        "slow_operation_ms": 10_000.0,
    }
    base.update(kw)
    return Settings(**base)


@strawberry.type
class Part:
    id: int

    @strawberry.field
    async def slow(self) -> int:
        await asyncio.sleep(MIN_MS * 2 / 1000)
        return self.id

    @strawberry.field
    async def fast(self) -> int:
        return self.id

    @strawberry.field
    def fast_sync(self) -> int:
        return self.id

    @strawberry.field
    async def owner(self, info: Info) -> str:
        value: str = await info.context["loader"].load(self.id)
        return value


@strawberry.type
class Query:
    @strawberry.field
    async def parts(self, label: str, count: int = 3) -> list[Part]:
        return [Part(id=i) for i in range(count)]

    @strawberry.field
    def hello(self) -> str:
        return "hi"

    @strawberry.field
    async def boom(self) -> int:
        raise ValueError(SECRET)


def build(**settings_kw: Any) -> tuple[Observability, InMemorySpanExporter, strawberry.Schema]:
    exporter = InMemorySpanExporter()
    obs = Observability(
        make_settings(**settings_kw),
        span_exporter=exporter,
        env={"OTEL_TRACES_SAMPLER": "always_on"},
    )
    schema = strawberry.Schema(query=Query, extensions=obs.strawberry_extensions())
    return obs, exporter, schema


async def owner_batch(keys: Sequence[Any]) -> list[str]:
    await asyncio.sleep(0.001)
    return [f"owner-{k}" for k in keys]


def by_name(spans: Sequence[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


def all_text(spans: Sequence[ReadableSpan]) -> str:
    parts: list[str] = []
    for s in spans:
        parts.append(s.name)
        parts.extend(f"{k}={v}" for k, v in (s.attributes or {}).items())
        for e in s.events:
            parts.extend(f"{k}={v}" for k, v in (e.attributes or {}).items())
        for link in s.links:
            parts.extend(f"{k}={v}" for k, v in (link.attributes or {}).items())
        if s.status.description:
            parts.append(s.status.description)
    return "\n".join(parts)


QUERY = "query Parts($label: String!) { parts(label: $label) { id slow fast fastSync } hello }"


async def test_operation_span_follows_conventions_without_variables() -> None:
    obs, exporter, schema = build()
    result = await schema.execute(QUERY, variable_values={"label": SECRET}, operation_name="Parts")
    assert result.errors is None
    spans = exporter.get_finished_spans()
    (op,) = by_name(spans, "query")
    assert op.name == "query Parts"
    attrs = dict(op.attributes or {})
    assert attrs["graphql.operation.type"] == "query"
    assert attrs["graphql.operation.name"] == "Parts"
    assert len(str(attrs["graphql.document.hash"])) == 32
    assert "graphql.document" not in attrs
    assert SECRET not in all_text(spans)
    obs.shutdown()


async def test_top_level_always_slow_nested_with_path_fast_nested_none() -> None:
    obs, exporter, schema = build()
    await schema.execute(QUERY, variable_values={"label": "x"})
    spans = exporter.get_finished_spans()
    (op,) = by_name(spans, "query")
    paths = {
        s.attributes["graphql.field.path"]: s
        for s in spans
        if s.attributes and "graphql.field.path" in s.attributes
    }
    # top-level fields always, even the trivial sync one
    assert {"parts", "hello"} <= set(paths)
    # slow nested resolvers: one span per list item with its path and real duration
    for i in range(3):
        span = paths[f"parts.{i}.slow"]
        assert span.end_time is not None and span.start_time is not None
        assert (span.end_time - span.start_time) / 1e6 >= MIN_MS
        assert span.parent is not None and span.parent.span_id == paths["parts"].context.span_id
        assert op.start_time is not None and span.start_time >= op.start_time
    # fast nested resolvers (async and sync) and scalar fields: nothing
    assert not [p for p in paths if p.endswith((".fast", ".fastSync", ".id"))]
    assert paths["parts"].parent is not None
    assert paths["parts"].parent.span_id == op.context.span_id
    obs.shutdown()


async def test_resolver_metrics_only_above_threshold() -> None:
    obs, _, schema = build()
    await schema.execute(QUERY, variable_values={"label": "x"})
    hist = obs.metrics.resolver_duration
    assert hist.count("Part", "slow") == 3
    assert hist.count("Part", "fast") == 0
    assert hist.count("Query", "parts") == 1
    assert obs.metrics.operations.value("Parts", "query", "ok") == 1


async def test_loader_batch_span_linked_to_waiters() -> None:
    obs, exporter, schema = build()
    loader = obs.dataloader("owner_by_part", owner_batch)
    q = '{ a: parts(label: "x") { owner } b: parts(label: "y", count: 2) { owner } }'
    result = await schema.execute(q, context_value={"loader": loader})
    assert result.errors is None
    spans = exporter.get_finished_spans()
    (batch,) = by_name(spans, "loader owner_by_part")
    assert batch.attributes is not None
    assert batch.attributes["dbx.loader.batch_size"] == 3  # keys 0,1,2 de-duplicated by the cache
    tops = {
        s.attributes["graphql.field.path"]: s
        for s in by_name(spans, "resolve Query.parts")
        if s.attributes
    }
    linked = {link.context.span_id for link in batch.links}
    assert linked == {tops["a"].context.span_id, tops["b"].context.span_id}
    (op,) = by_name(spans, "query")
    assert batch.context.trace_id == op.context.trace_id
    obs.shutdown()


async def slow_owner_batch(keys: Sequence[Any]) -> list[str]:
    await asyncio.sleep(MIN_MS * 2 / 1000)
    return [f"owner-{k}" for k in keys]


async def test_waiting_on_a_slow_batch_is_the_batch_span_not_resolver_spans() -> None:
    obs, exporter, schema = build()
    loader = obs.dataloader("owner_by_part", slow_owner_batch)
    result = await schema.execute(
        '{ parts(label: "x", count: 4) { owner } }', context_value={"loader": loader}
    )
    assert result.errors is None
    spans = exporter.get_finished_spans()
    (batch,) = by_name(spans, "loader owner_by_part")
    assert batch.end_time is not None and batch.start_time is not None
    assert (batch.end_time - batch.start_time) / 1e6 >= MIN_MS * 2 * 0.9
    # each owner resolver took longer than the threshold, all of it waiting
    assert by_name(spans, "resolve Part.owner") == []
    assert obs.metrics.resolver_duration.count("Part", "owner") == 0
    obs.shutdown()


@strawberry.type
class Slowish:
    id: int

    @strawberry.field
    async def owner_then_work(self, info: Info) -> str:
        value: str = await info.context["loader"].load(self.id)
        await asyncio.sleep(MIN_MS * 2 / 1000)  # its own slow work after the batch
        return value


@strawberry.type
class WaitQuery:
    @strawberry.field
    def items(self) -> list[Slowish]:
        return [Slowish(id=i) for i in range(2)]


async def test_resolver_slow_on_its_own_is_recorded_with_its_loader_wait() -> None:
    obs, exporter, _ = build()
    schema = strawberry.Schema(query=WaitQuery, extensions=obs.strawberry_extensions())
    loader = obs.dataloader("owner_by_part", slow_owner_batch)
    result = await schema.execute("{ items { ownerThenWork } }", context_value={"loader": loader})
    assert result.errors is None
    spans = by_name(exporter.get_finished_spans(), "resolve Slowish.ownerThenWork")
    assert sorted(str((s.attributes or {})["graphql.field.path"]) for s in spans) == [
        "items.0.ownerThenWork",
        "items.1.ownerThenWork",
    ]
    for span in spans:
        assert span.end_time is not None and span.start_time is not None
        # the span keeps its real start and end: the wait and the work
        assert (span.end_time - span.start_time) / 1e6 >= MIN_MS * 4 * 0.9
        assert float((span.attributes or {})["dbx.graphql.loader_wait_ms"]) >= MIN_MS * 2 * 0.9
    obs.shutdown()


async def test_traced_batch_without_loader_links_parent() -> None:
    obs, exporter, _ = build()
    traced = obs.traced_batch("plain")(owner_batch)
    with obs.tracer.start_as_current_span("caller") as caller:
        assert await traced([1, 2]) == ["owner-1", "owner-2"]
    (batch,) = by_name(exporter.get_finished_spans(), "loader plain")
    assert batch.parent is not None and batch.parent.span_id == caller.get_span_context().span_id
    assert [link.context.span_id for link in batch.links] == [caller.get_span_context().span_id]


async def test_failed_resolver_marks_error_without_message() -> None:
    obs, exporter, schema = build()
    result = await schema.execute("query Boom { boom }")
    assert result.errors
    spans = exporter.get_finished_spans()
    (op,) = by_name(spans, "query")
    assert op.status.status_code.name == "ERROR"
    (field,) = by_name(spans, "resolve Query.boom")
    assert field.status.status_code.name == "ERROR"
    assert SECRET not in all_text(spans)
    assert obs.metrics.operations.value("Boom", "query", "error") == 1


async def test_rejected_operation_counted() -> None:
    obs, exporter, schema = build()
    result = await schema.execute("query Bad { nope }")
    assert result.errors
    assert obs.metrics.operations.value("Bad", "query", "rejected") == 1
    (op,) = by_name(exporter.get_finished_spans(), "query")
    assert op.status.status_code.name == "ERROR"


async def test_slow_operation_log_line(caplog: pytest.LogCaptureFixture) -> None:
    obs, _, schema = build(slow_operation_ms=1.0)
    with caplog.at_level("WARNING", logger="dbx.observability"):
        await schema.execute(QUERY, variable_values={"label": SECRET}, operation_name="Parts")
    (record,) = [r for r in caplog.records if r.getMessage() == "slow graphql operation"]
    assert record.__dict__["operation"] == "Parts"
    assert record.__dict__["duration_ms"] >= 1.0
    assert SECRET not in str(record.__dict__)
    assert obs.metrics.slow_operations.value("Parts", "query") == 1


async def test_no_spans_when_sampler_off_but_schema_works() -> None:
    exporter = InMemorySpanExporter()
    obs = Observability(
        make_settings(), span_exporter=exporter, env={"OTEL_TRACES_SAMPLER": "always_off"}
    )
    schema = strawberry.Schema(query=Query, extensions=obs.strawberry_extensions())
    result = await schema.execute(QUERY, variable_values={"label": "x"})
    assert result.errors is None and result.data is not None
    assert exporter.get_finished_spans() == ()
    assert obs.metrics.operations.value("Parts", "query", "ok") == 1
