"""``Planner``: answers a validated query operation with one SQL statement
whose single value is the response's ``data`` JSON, built by PostgreSQL,
or returns None so the resolver path answers.

Plans are cached per (digest of the query text, operation name), LRU
bounded by entries and by bytes (a plan keeps its document alive, so it
weighs what the document weighs), declines included; statement texts per
argument shape inside each plan. A request
costs a variable coercion, argument checks, one tenant read transaction
(``DbSession.read``: replica routing, read-your-writes, retries) and no
JSON parsing in Python: the text goes into the body as an
``orjson.Fragment``.

An ``analytics { ... }`` plan runs through ``DbSession.analytics``, like
the resolvers of ``gateway.api.analytics`` (replicas, the analytics
timeout, the same tenant settings).

Errors are never written here: arguments the resolvers would refuse, a
role without ``read`` (``analytics`` for an analytics plan), and a failing
statement all return None, so every error comes from the resolver path. A
statement that failed with ``UNAVAILABLE`` or ``TIMEOUT`` is not run again
there: the session fails the resolvers' reads the same way at once
(``DbSession.fail_fast``), so that error is the answer, in the resolver
path's words, without the work being done twice under overload.

Must not: write SQL (``gateway.data.planned*``) or open connections.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from graphql import GraphQLSchema
from opentelemetry import context as otel_context
from opentelemetry import trace

from gateway.api.documents import ENTRY_OVERHEAD, Prepared
from gateway.api.plan.bind import bind
from gateway.api.plan.compile import Decline, Plan, compile_plan
from gateway.api.plan.emit import shape, statement
from gateway.auth import Principal
from gateway.data import planned
from gateway.db.costs import argument_scale
from gateway.db.database import DbSession
from gateway.errors import GatewayError, Timeout, Unavailable
from gateway.observability import Observability
from gateway.observability.operation import document_hash, operation_label

MAX_SHAPES = 32  # statement texts per plan (argument shapes)


class Planner:
    """Per process; built by ``GraphQLHttp`` when ``settings.planner`` is on."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        max_first: int,
        maxsize: int = 512,
        max_bytes: int = 32 << 20,
    ) -> None:
        self._schema = schema
        self._max_first = max_first
        self._maxsize = maxsize
        self._max_bytes = max_bytes
        self._bytes = 0
        # (plan or None for a decline, weight)
        self._plans: OrderedDict[tuple[bytes, str | None], tuple[Plan | None, int]] = OrderedDict()
        self.planned = 0  # answered here (for tests and the bench)
        self.declined = 0

    def plan(self, prepared: Prepared, name: str | None) -> Plan | None:
        """The plan of a checked document's operation, or None (declined)."""
        key = (prepared.key, name)
        hit = self._plans.get(key)
        if hit is not None:
            self._plans.move_to_end(key)
            return hit[0]
        assert prepared.document is not None
        try:
            plan: Plan | None = compile_plan(self._schema, prepared.document, name)
        except Decline:
            plan = None
        weight = prepared.weight if plan is not None else ENTRY_OVERHEAD
        if weight <= self._max_bytes:
            self._plans[key] = (plan, weight)
            self._bytes += weight
            while len(self._plans) > self._maxsize or self._bytes > self._max_bytes:
                self._bytes -= self._plans.popitem(last=False)[1][1]
        return plan

    def statement_for(
        self, plan: Plan, variables: dict[str, Any] | None, principal: Principal
    ) -> tuple[str, list[Any]] | None:
        """SQL text and values for this request, or None (resolver path)."""
        try:
            bounds, values = bind(plan, self._schema, variables, principal.org_id, self._max_first)
        except Decline:
            return None
        key = shape(bounds)
        sql = plan.sql_by_shape.get(key)
        if sql is None:
            sql = statement(plan, bounds)
            if len(plan.sql_by_shape) >= MAX_SHAPES:
                plan.sql_by_shape.clear()
            plan.sql_by_shape[key] = sql
        return sql, values

    async def execute(
        self,
        session: DbSession,
        principal: Principal,
        op: dict[str, Any],
        prepared: Prepared,
        obs: Observability | None = None,
    ) -> str | None:
        """The ``data`` JSON text, or None when the resolver path must answer."""
        plan = self.plan(prepared, op["operationName"])
        # the role the resolver path checks: `read` for plain reads,
        # `analytics` (Query.analytics) for analytics
        if plan is None or not principal.can(plan.intent):
            self.declined += 1
            return None
        found = self.statement_for(plan, op["variables"], principal)
        if found is None:
            self.declined += 1
            return None
        sql, values = found
        if obs is None:
            text = await self._read(session, plan, sql, values)
        else:
            text = await self._traced(session, plan, sql, values, op, obs)
        if text is None:
            self.declined += 1
            return None
        self.planned += 1
        return text

    async def _read(
        self, session: DbSession, plan: Plan, sql: str, values: list[Any]
    ) -> str | None:
        try:
            if plan.intent == "analytics":
                # as the resolvers' `ctx.db.analytics`: replicas, analytics
                # timeout; a statement text and its arguments' scale name
                # its cost (short ones skip the analytics slots)
                kind = (sql, argument_scale(values))
                return await session.analytics_keyed(kind, planned.fetch_json, sql, values)
            return await session.read(planned.fetch_json, sql, values)
        except (Timeout, Unavailable) as err:
            # the answer: the resolvers fail with it at once, without running
            # the same work again under the same overload
            session.fail_fast(err)
            return None
        except GatewayError:
            return None  # the resolver path answers, with its own error

    async def _traced(
        self,
        session: DbSession,
        plan: Plan,
        sql: str,
        values: list[Any],
        op: dict[str, Any],
        obs: Observability,
    ) -> str | None:
        # The same operation span and metrics as the resolver path's extension.
        name = op["operationName"]
        p0 = time.perf_counter()
        span = obs.recorder.start(f"query {name}" if name else "query")
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            text = await self._read(session, plan, sql, values)
        finally:
            otel_context.detach(token)
        elapsed = time.perf_counter() - p0
        if span.is_recording():
            attrs: dict[str, Any] = {"graphql.operation.type": "query"}
            if name:
                attrs["graphql.operation.name"] = name[:200]
            attrs["graphql.document.hash"] = document_hash(op["query"])
            attrs["dbx.graphql.planned"] = text is not None
            attrs["dbx.graphql.outcome"] = "ok"
            span.set_attributes(attrs)
        span.end()
        if text is not None:
            label = operation_label(name)
            obs.metrics.operations.inc(label, "query", "ok")
            obs.metrics.operation_duration.observe(elapsed, label, "query")
        return text
