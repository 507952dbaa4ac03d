"""The app as the e2e suite serves it: the real ``create_app`` with an
``Observability`` that also counts SQL statements per request id, readable
at ``GET /_test/statements?request_id=...`` (test-only; never in gateway/).
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from starlette.applications import Starlette
from strawberry.extensions import SchemaExtension

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.connection import StatementEvent
from gateway.observability import Observability

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("e2e_rid", default=None)


class FailOnRequest(SchemaExtension):
    """Test-only: an operation named ``DbxTestCrash`` raises an unexpected
    exception inside execution, to show how the gateway masks it."""

    def on_execute(self) -> Iterator[None]:
        if self.execution_context.operation_name == "DbxTestCrash":
            raise RuntimeError("secret detail: relation dbx_aviation.aircraft at /srv/app.py")
        yield


class CountingObservability(Observability):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.statements: dict[str, list[str]] = defaultdict(list)

    def on_statement(self, event: StatementEvent) -> None:
        super().on_statement(event)
        rid = _request_id.get()
        if rid is not None:
            self.statements[rid].append(f"{event.node}: {event.sql}")

    def strawberry_extensions(self) -> list[Any]:
        return [*super().strawberry_extensions(), FailOnRequest]

    def wrap_asgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        inner = super().wrap_asgi(app)
        statements = self.statements

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            headers = dict(scope["headers"])
            if scope["path"] == "/_test/statements":
                qs = scope.get("query_string", b"").decode()
                rid = qs.partition("request_id=")[2]
                body = orjson.dumps({"statements": statements.get(rid, [])})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            token = _request_id.set(headers.get(b"x-request-id", b"").decode() or None)
            try:
                await inner(scope, receive, send)
            finally:
                _request_id.reset(token)

        return counting


def create() -> Starlette:
    settings = Settings.from_env()
    return create_app(settings, observability=CountingObservability(settings))
