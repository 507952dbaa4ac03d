"""JSON log lines carrying the trace, the request and the tenant.

One JSON object per line: ``time``, ``level``, ``logger``, ``message``,
``trace_id``, ``span_id``, ``request_id``, ``org_id``, then whitelisted
``extra`` fields. Which request and tenant a line belongs to comes from
context variables owned by a ``RequestLogContext`` (one per Observability),
bound by the app once the request id and principal are known.

Never logged: tokens, GraphQL variables, SQL parameters. ``extra`` fields are
kept only when their names are in ``SAFE_EXTRA`` and their values scalars, so
a careless ``log.info(..., extra={"variables": v})`` drops the value.

Must not: format or print anything outside the logging system.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from opentelemetry import trace

SAFE_EXTRA = frozenset(
    {
        "node",
        "intent",
        "reason",
        "error",
        "error_code",
        "operation",
        "operation_type",
        "duration_ms",
        "threshold_ms",
        "route",
        "method",
        "status",
        "document_hash",
        "loader",
        "rows",
        "path",
        "flight_id",
        "partition",
        "count",
        "lag_s",
        "sql",
    }
)


class RequestLogContext:
    """The request id and org id of the request being served."""

    def __init__(self) -> None:
        self.request_id: ContextVar[str | None] = ContextVar("dbx_request_id", default=None)
        self.org_id: ContextVar[str | None] = ContextVar("dbx_org_id", default=None)

    @contextmanager
    def bind(
        self, *, request_id: str | None = None, org_id: object | None = None
    ) -> Iterator[None]:
        tokens = []
        if request_id is not None:
            tokens.append((self.request_id, self.request_id.set(request_id)))
        if org_id is not None:
            tokens.append((self.org_id, self.org_id.set(str(org_id))))
        try:
            yield
        finally:
            for var, token in reversed(tokens):
                var.reset(token)

    def set(self, *, request_id: str | None = None, org_id: object | None = None) -> None:
        """Bind for the rest of the current context (a request's task)."""
        if request_id is not None:
            self.request_id.set(request_id)
        if org_id is not None:
            self.org_id.set(str(org_id))


class JsonFormatter(logging.Formatter):
    def __init__(self, request_ctx: RequestLogContext) -> None:
        super().__init__()
        self._ctx = request_ctx

    def format(self, record: logging.LogRecord) -> str:
        ctx = trace.get_current_span().get_span_context()
        doc: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": f"{ctx.trace_id:032x}" if ctx.is_valid else None,
            "span_id": f"{ctx.span_id:016x}" if ctx.is_valid else None,
            "request_id": self._ctx.request_id.get(),
            "org_id": self._ctx.org_id.get(),
        }
        for key in SAFE_EXTRA.intersection(record.__dict__):
            value = record.__dict__[key]
            if value is None or isinstance(value, str | int | float | bool):
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The class only: exception messages may quote values.
            doc["exception"] = record.exc_info[0].__name__
        return orjson.dumps(doc).decode()


def _iso(created: float) -> str:
    secs = int(created)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        + f".{int((created - secs) * 1000):03d}Z"
    )


def install(request_ctx: RequestLogContext, level: int | str = logging.INFO) -> logging.Handler:
    """Replace the root handlers with one JSON handler on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(request_ctx))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
