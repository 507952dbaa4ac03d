"""Both read paths of the app in one process, over the same ``Database``:
``GraphQLHttp`` with the planner and without it, called with a real
Starlette request carrying the principal the auth middleware would set."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import orjson
from starlette.requests import Request

from gateway.api.documents import DocumentCache
from gateway.api.http import GraphQLHttp
from gateway.api.schema import build_schema
from gateway.auth import Principal
from gateway.config import Settings
from gateway.db.database import Database


class TwoPaths:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)
        schema = build_schema()
        documents = DocumentCache(schema._schema, settings.limits, prod=settings.is_prod)
        on = dataclasses.replace(settings, planner=True)
        off = dataclasses.replace(settings, planner=False)
        self.planned = GraphQLHttp(schema=schema, documents=documents, settings=on, db=self.db)
        self.resolved = GraphQLHttp(schema=schema, documents=documents, settings=off, db=self.db)
        assert self.planned.planner is not None and self.resolved.planner is None

    async def start(self) -> None:
        await self.db.start()

    async def close(self) -> None:
        await self.db.close()

    def planner_planned(self) -> int:
        assert self.planned.planner is not None
        return self.planned.planner.planned

    async def call_raw(
        self,
        http: GraphQLHttp,
        principal: Principal,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> tuple[int, bytes]:
        """Status and the response body's bytes."""
        body = orjson.dumps(
            {"query": query, "variables": variables, "operationName": operation_name}
        )
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # a client that stays connected until it has the answer
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
            "state": {"principal": principal, "request_id": uuid.uuid4().hex},
        }
        response = await http.graphql(Request(scope, receive))
        return response.status_code, bytes(response.body)

    async def both(
        self,
        principal: Principal,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> tuple[tuple[int, Any], tuple[int, Any], bool]:
        """(planned answer, resolver answer, whether the planner answered)."""
        (sa, a), (sb, b), planned = await self.both_raw(principal, query, variables, operation_name)
        return (sa, orjson.loads(a)), (sb, orjson.loads(b)), planned

    async def both_raw(
        self,
        principal: Principal,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> tuple[tuple[int, bytes], tuple[int, bytes], bool]:
        """As ``both``, with the response bodies' bytes."""
        before = self.planner_planned()
        a = await self.call_raw(self.planned, principal, query, variables, operation_name)
        b = await self.call_raw(self.resolved, principal, query, variables, operation_name)
        return a, b, self.planner_planned() > before
