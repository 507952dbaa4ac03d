"""A planned analytics field that runs out of time is not run again by the
resolvers (which would spend the whole timeout a second time before the
client hears TIMEOUT), and the answer is the resolver path's own.

The timeout is made certain, not hoped for: the owner holds an ACCESS
EXCLUSIVE lock on the telemetry table, and analytics run on the primary (no
replicas configured, primary fallback on), so the analytics statement waits
on that lock until its statement timeout fires."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import asyncpg
import orjson

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db.connection import StatementEvent
from tests.integration.planner_paths import TwoPaths
from tests.support.wait import wait_replicated

QUERY = (
    '{ analytics { telemetryStats(metric: ALTITUDE_M, from: "2020-01-01T00:00:00Z",'
    ' to: "2020-01-08T00:00:00Z") { count avg } } }'
)


class Statements:
    """A statement observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[StatementEvent] = []

    def on_statement(self, event: StatementEvent) -> None:
        self.events.append(event)

    def sql_comment(self) -> str:
        return ""

    def statement_comment(self) -> str:
        return ""

    def analytics(self) -> list[StatementEvent]:
        return [e for e in self.events if e.intent == "analytics"]


async def test_timed_out_planned_analytics_field_is_not_run_again(
    settings: Settings, owner_dsn: str, stack: dict[str, Any], make_org: Any
) -> None:
    org: uuid.UUID = await make_org()
    seen = Statements()
    tp = TwoPaths(
        dataclasses.replace(
            settings,
            replica_dsns=(),
            analytics_primary_fallback=True,
            analytics_timeout_ms=300,
        )
    )
    tp.db.observer = seen
    await tp.start()
    owner = await asyncpg.connect(owner_dsn)
    try:
        principal = Principal(org_id=org, subject="timeouts", roles=frozenset({"analyst"}))
        tx = owner.transaction()
        await tx.start()
        try:
            await owner.execute("lock table dbx_aviation.flight_telemetry in access exclusive mode")
            planned = await tp.call_raw(tp.planned, principal, QUERY)
            on_planned_path = len(seen.analytics())
            resolved = await tp.call_raw(tp.resolved, principal, QUERY)
            on_resolver_path = len(seen.analytics()) - on_planned_path
        finally:
            await tx.rollback()
    finally:
        await owner.close()
        await tp.close()
    # hot standbys replayed the lock too: wait until they have let it go
    await wait_replicated(stack)
    # the same answer, TIMEOUT at the field, on both paths
    assert planned == resolved, (planned, resolved)
    body = orjson.loads(planned[1])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["TIMEOUT"]
    assert body["errors"][0]["path"] == ["analytics", "telemetryStats"]
    # one statement (the planner's, which timed out) on the planned path;
    # the resolver path alone runs its own once
    assert on_resolver_path == 1
    assert on_planned_path == 1, [e.sql[:80] for e in seen.analytics()]
    assert all(e.error is not None for e in seen.analytics())


READ_QUERY = "{ flights(first: 2) { totalCount edges { node { id } } } }"


async def test_timed_out_planned_read_is_the_answer(
    settings: Settings, owner_dsn: str, stack: dict[str, Any], make_org: Any
) -> None:
    """A planned read whose statement times out is answered with that
    TIMEOUT: the resolvers fail with it at once and run no statement."""
    org: uuid.UUID = await make_org()
    seen = Statements()
    tp = TwoPaths(dataclasses.replace(settings, replica_dsns=(), read_timeout_ms=300))
    tp.db.observer = seen
    await tp.start()
    owner = await asyncpg.connect(owner_dsn)
    try:
        principal = Principal(org_id=org, subject="timeouts", roles=frozenset({"viewer"}))
        tx = owner.transaction()
        await tx.start()
        try:
            await owner.execute("lock table dbx_aviation.flights in access exclusive mode")
            planned = await tp.call_raw(tp.planned, principal, READ_QUERY)
            on_planned_path = [e for e in seen.events if e.intent == "read"]
            resolved = await tp.call_raw(tp.resolved, principal, READ_QUERY)
        finally:
            await tx.rollback()
    finally:
        await owner.close()
        await tp.close()
    await wait_replicated(stack)
    # the resolver path's own answer, TIMEOUT at the field
    assert planned == resolved, (planned, resolved)
    body = orjson.loads(planned[1])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["TIMEOUT"]
    assert body["errors"][0]["path"] == ["flights"]
    # only the planner's statement ran (and timed out) for the planned request
    assert len(on_planned_path) == 1, [e.sql[:80] for e in on_planned_path]
    assert on_planned_path[0].error is not None
