"""Tracing, metrics and logs: beside every room, changing no behaviour.

``Observability`` is built once in the app's lifespan from the ``OTEL_*`` and
``DBX_*`` environment and handed to the parts that report to it.

Must not: change behaviour (a failing exporter never fails a request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config import Settings
from gateway.db.connection import StatementEvent


class Observability:
    """Interface used by the app, the GraphQL schema and the database layer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # gateway.db.connection.StatementObserver
    def on_statement(self, event: StatementEvent) -> None:
        """Called after every SQL statement (span, metrics)."""

    def sql_comment(self) -> str:
        """Appended to SQL text (sqlcommenter ``traceparent``), or ''."""
        return ""

    def strawberry_extensions(self) -> list[Any]:
        """Schema extensions (operation span, slow resolver spans)."""
        return []

    def wrap_asgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """Outermost ASGI middleware: server span, X-Trace-Id, request metrics."""
        return app

    def metrics_text(self, db_nodes: list[dict[str, object]]) -> str:
        """Prometheus exposition text for /metrics."""
        return ""

    def shutdown(self) -> None:
        """Flush and stop exporters."""
