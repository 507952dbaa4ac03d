"""One traced GraphQL request through the real app (in process, so spans can
be read from an in-memory exporter): server span continuing the caller's
``traceparent``, the operation span, top-level field spans, loader batch spans
with links, SQL spans with node and intent, all in one trace; and /metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import Settings
from gateway.observability import Observability
from tests.e2e.fleet_data import seed_fleet
from tests.support.wait import wait_replicated

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"
QUERY = (
    "query FleetTrace($n: Int!) { fleet(first: $n) { edges { node { id"
    " flights(first: 5) { edges { node { id aircraft { id } } } } } } } }"
)


def text_of(spans: tuple[ReadableSpan, ...]) -> str:
    out = []
    for s in spans:
        out.append(s.name)
        out.extend(f"{k}={v}" for k, v in (s.attributes or {}).items())
        out.extend(str(link.attributes) for link in s.links)
    return "\n".join(out)


async def test_nested_query_produces_one_linked_trace(
    settings: Settings,
    make_org: Any,
    owner_dsn: str,
    stack: dict[str, Any],
    token: Callable[..., str],
) -> None:
    org = await make_org()
    await seed_fleet(owner_dsn, org, 3, flights_each=2, prefix="TR")
    await wait_replicated(stack)
    bearer = token(org, "viewer")
    exporter = InMemorySpanExporter()
    # the resolver path: the planned path answers this query with one statement
    settings = dataclasses.replace(settings, planner=False)
    obs = Observability(settings, span_exporter=exporter, env={"OTEL_TRACES_SAMPLER": "always_on"})
    app = create_app(settings, observability=obs)
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})  # what a server does with lifespan state
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            resp = await client.post(
                "/graphql",
                json={"query": QUERY, "variables": {"n": 3}, "operationName": "FleetTrace"},
                headers={"authorization": f"Bearer {bearer}", "traceparent": PARENT},
            )
            metrics = await client.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["data"]["fleet"]["edges"]) == 3
    assert resp.headers["x-trace-id"] == TRACE

    spans = tuple(s for s in exporter.get_finished_spans() if s.name != "GET /metrics")
    stray = [
        (s.name, dict(s.attributes or {})) for s in spans if s.context.trace_id != int(TRACE, 16)
    ]
    assert not stray, stray
    by_id = {s.context.span_id: s for s in spans}
    (server,) = [s for s in spans if s.name == "POST /graphql"]
    assert server.parent is not None and server.parent.span_id == 0xB7AD6B7169203331
    (op,) = [s for s in spans if s.name == "query FleetTrace"]
    assert (op.attributes or {})["graphql.operation.type"] == "query"

    def ancestors(span: ReadableSpan) -> list[int]:
        out = []
        while span.parent is not None and span.parent.span_id in by_id:
            out.append(span.parent.span_id)
            span = by_id[span.parent.span_id]
        return out

    assert server.context.span_id in ancestors(op)
    (fleet,) = [s for s in spans if (s.attributes or {}).get("graphql.field.path") == "fleet"]
    assert op.context.span_id in ancestors(fleet)
    batches = [s for s in spans if s.name.startswith("loader ")]
    assert batches, [s.name for s in spans]
    for batch in batches:
        assert batch.links, batch.name
        assert fleet.context.span_id in ancestors(batch)
    sql = [s for s in spans if (s.attributes or {}).get("db.system.name") == "postgresql"]
    assert sql
    for s in sql:
        attrs = s.attributes or {}
        assert attrs["db.dbx.intent"] == "read"
        assert str(attrs["db.dbx.node"]).startswith(("replica_", "primary"))
        assert isinstance(attrs.get("server.port"), int) and attrs["server.port"] != 6432
        # the org check runs before GraphQL, so under the server span only
        assert server.context.span_id in ancestors(s)
    assert sum(op.context.span_id in ancestors(s) for s in sql) >= 2
    # batch SQL nests under its batch span
    assert any(set(ancestors(s)) & {b.context.span_id for b in batches} for s in sql)
    text = text_of(spans)
    assert bearer not in text and bearer.split(".")[1] not in text

    families = {f.name for f in text_string_to_metric_families(metrics.text)}
    assert {"dbx_graphql_operations", "dbx_sql_duration_seconds", "dbx_node_up"} <= families
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(metrics.text)
        for s in f.samples
    }
    ok = (("operation", "FleetTrace"), ("outcome", "ok"), ("type", "query"))
    assert samples[("dbx_graphql_operations_total", ok)] == 1
