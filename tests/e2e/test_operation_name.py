"""A request without ``operationName`` is named by its document's single
operation (GraphQL's rule) in the operation span, the metrics and the
slow-operation log line, on the planned path and on the resolver path (the
app in process, spans read from an in-memory exporter)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.config import Settings
from gateway.observability import Observability

QUERY = "query FleetByName($n: Int!) { fleet(first: $n) { edges { node { id registration } } } }"


@pytest.mark.parametrize("planner", [True, False], ids=["planned", "resolvers"])
async def test_operation_named_by_its_document(
    planner: bool,
    settings: Settings,
    make_org: Any,
    token: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    org = await make_org()  # no aircraft: the name does not depend on rows
    exporter = InMemorySpanExporter()
    # every operation is "slow", so the resolver path logs its line
    settings = dataclasses.replace(settings, planner=planner, slow_operation_ms=0.0)
    obs = Observability(settings, span_exporter=exporter, env={"OTEL_TRACES_SAMPLER": "always_on"})
    app = create_app(settings, observability=obs, configure_logging=False)
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            with caplog.at_level(logging.WARNING, logger="dbx.observability"):
                resp = await client.post(
                    "/graphql",
                    json={"query": QUERY, "variables": {"n": 5}},
                    headers={"authorization": f"Bearer {token(org, 'viewer')}"},
                )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["fleet"]["edges"] == []

    ops = [s for s in exporter.get_finished_spans() if s.name.startswith("query")]
    assert [s.name for s in ops] == ["query FleetByName"]
    attrs = dict(ops[0].attributes or {})
    assert attrs["graphql.operation.name"] == "FleetByName"
    if planner:
        assert attrs["dbx.graphql.planned"] is True
    else:
        assert "dbx.graphql.planned" not in attrs
        slow = [r for r in caplog.records if r.getMessage() == "slow graphql operation"]
        assert [r.__dict__["operation"] for r in slow] == ["FleetByName"]
    assert obs.metrics.operations.value("FleetByName", "query", "ok") == 1
    assert obs.metrics.operations.value("anonymous", "query", "ok") == 0
    assert obs.metrics.operation_duration.count("FleetByName", "query") == 1
