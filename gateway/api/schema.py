"""The Strawberry schema: roots, the extension that hands execution the
document the HTTP layer already parsed, validated and limit-checked, and
error logging (client-facing formatting is in ``gateway.api.errors``).

Must not: write SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from gateway.api.mutations import Mutation
from gateway.api.query import Query
from gateway.api.scalars import SCALAR_OVERRIDES
from gateway.errors import GatewayError

log = logging.getLogger("dbx.api")


class PreparedDocument(SchemaExtension):
    """Skips Strawberry's own parse and validation when the request already
    carries a document checked by ``gateway.api.documents`` (cached by query
    text, so a repeated query is neither parsed nor validated again)."""

    def on_parse(self) -> Iterator[None]:
        doc = getattr(self.execution_context.context, "document", None)
        if doc is not None:
            self.execution_context.graphql_document = doc
        yield

    def on_validate(self) -> Iterator[None]:
        if getattr(self.execution_context.context, "document", None) is not None:
            self.execution_context.pre_execution_errors = []
        yield


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        request_id = getattr(getattr(execution_context, "context", None), "request_id", "-")
        for err in errors:
            orig = err.original_error
            if orig is None or isinstance(orig, GatewayError) or err.path is None:
                continue  # client errors: answered, not logged as failures
            log.error(
                "unhandled error in resolver %s",
                ".".join(str(p) for p in err.path),
                exc_info=orig,
                extra={"request_id": request_id},
            )


def build_schema(extensions: Sequence[Any] = ()) -> GatewaySchema:
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=[PreparedDocument, *extensions],
        scalar_overrides=SCALAR_OVERRIDES,
    )


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
