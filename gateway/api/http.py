"""GraphQL over HTTP and the NDJSON ingest route: request decoding, batch and
method rules, the document cache, the per-operation context (principal,
database session, loaders), and the JSON answer with its status code and
consistency token.

Must not: write SQL; the principal and request id come from the app's
middleware (``request.state``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import DocumentNode, OperationDefinitionNode, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from gateway.api import graphiql
from gateway.api.context import Context
from gateway.api.documents import DocumentCache
from gateway.api.errors import format_error, gateway_error_json, status_for
from gateway.api.ingest import ingest, ndjson_points
from gateway.api.loaders import Loaders
from gateway.api.plan import Planner
from gateway.api.schema import GatewaySchema
from gateway.auth import Principal
from gateway.config import Settings
from gateway.db.database import Database, DbSession
from gateway.errors import BadUserInput, Forbidden, GatewayError, QueryTooComplex
from gateway.observability import Observability

CONSISTENCY_HEADER = "X-DBX-Consistency"
JSON_TYPE = "application/json"


class MethodNotAllowed(GatewayError):
    code = "BAD_USER_INPUT"
    http_status = 405
    default_message = "Mutations must use POST"


class BodyReadTimeout(GatewayError):
    """An NDJSON upload that sent nothing for the idle timeout: the client's
    fault (408), ``extensions.reason`` = ``BODY_READ_TIMEOUT``."""

    code = "BAD_USER_INPUT"
    http_status = 408
    default_message = "The request body stopped arriving"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def _client_gone(receive: Receive) -> Callable[[], Awaitable[None]]:
    """A coroutine function that returns once the client has disconnected
    (``http.disconnect``), for a request whose body has been read."""

    async def gone() -> None:
        if (await receive())["type"] == "http.disconnect":
            return
        # an empty ``http.request`` (a GET's body): the next message tells
        if (await receive())["type"] == "http.disconnect":
            return
        await asyncio.Event().wait()  # a server that cannot tell: never

    return gone


def error_response(err: GatewayError, request_id: str | None = None) -> Response:
    headers: dict[str, str] = {}
    if err.http_status == 503:
        headers["Retry-After"] = "1"
    if err.http_status == 405:
        headers["Allow"] = "POST"
    return json_response(
        {"errors": [gateway_error_json(err, request_id)]}, err.http_status, headers
    )


@dataclass
class GraphQLHttp:
    schema: GatewaySchema
    documents: DocumentCache
    settings: Settings
    db: Database
    obs: Observability | None = None
    planner: Planner | None = None

    def __post_init__(self) -> None:
        if self.planner is None and self.settings.planner:
            limits = self.settings.limits
            self.planner = Planner(
                self.schema._schema, max_first=limits.max_first, max_bytes=limits.cache_bytes
            )

    # -- /graphql --------------------------------------------------------------
    async def graphql(self, request: Request) -> Response:
        request_id: str = request.state.request_id
        try:
            if request.method == "GET":
                if "query" not in request.query_params and _wants_html(request):
                    if self.settings.is_prod:
                        raise BadUserInput("The GraphQL IDE is disabled")
                    return graphiql.page()
                ops, batched = [_get_operation(request)], False
            else:
                ops, batched = await self._post_operations(request)
            session = self.db.session(
                request.state.principal,
                request.headers.get(CONSISTENCY_HEADER),
                # the body is read: what ``receive`` says next is the client leaving
                client_gone=_client_gone(request.receive),
            )
            results = []
            status = 200
            for op in ops:
                body, op_status = await self._run(request, session, op)
                results.append(body)
                status = op_status if not batched else 200
        except GatewayError as err:
            return error_response(err, request_id)
        headers = {CONSISTENCY_HEADER: session.token} if session.token else {}
        headers.update({"Retry-After": "1"} if status == 503 else {})
        return json_response(results if batched else results[0], status, headers)

    async def _post_operations(self, request: Request) -> tuple[list[dict[str, Any]], bool]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (JSON_TYPE, "application/graphql-response+json"):
            raise BadUserInput("Content-Type must be application/json")
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise BadUserInput("The body is not valid JSON") from None
        if isinstance(payload, list):
            if not payload:
                raise BadUserInput("Empty batch")
            if len(payload) > self.settings.limits.max_operations:
                raise QueryTooComplex(
                    f"A batch may hold at most {self.settings.limits.max_operations} operations"
                )
            return [_check_operation(p) for p in payload], True
        return [_check_operation(payload)], False

    async def _run(
        self, request: Request, session: DbSession, op: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        request_id: str = request.state.request_id
        prod = self.settings.is_prod
        prepared = self.documents.get(op["query"])
        if prepared.errors:
            errors = [gateway_error_json(e) for e in prepared.errors]
            return {"errors": errors}, 400
        op_type = prepared.operation_type(op["operationName"])
        if op["operationName"] is None:
            # GraphQL names a document's single operation: both paths' spans,
            # metrics and logs then carry its name
            op = {**op, "operationName": _single_operation_name(prepared.document)}
        if request.method == "GET" and op_type is not OperationType.QUERY:
            raise MethodNotAllowed()
        principal: Principal = request.state.principal
        if self.planner is not None and op_type is OperationType.QUERY:
            # One statement builds the whole `data` JSON; None: resolvers answer.
            text = await self.planner.execute(
                session,
                principal,
                op,
                prepared,
                self.obs,
            )
            if text is not None:
                return {"data": orjson.Fragment(text)}, 200
        ctx = Context(
            principal=principal,
            db=session,
            settings=self.settings,
            request_id=request_id,
            loaders=Loaders(
                session, principal.org_id, None if self.obs is None else self.obs.dataloader
            ),
            document=prepared.document,
            obs=self.obs,
        )
        result = await self.schema.execute(
            op["query"],
            variable_values=op["variables"],
            context_value=ctx,
            operation_name=op["operationName"],
        )
        body: dict[str, Any] = {}
        errors = [format_error(e, request_id, prod=prod) for e in result.errors or []]
        if errors:
            body["errors"] = errors
        body["data"] = result.data
        extensions = dict(result.extensions or {})
        if op_type is OperationType.MUTATION and session.token:
            extensions["consistency"] = session.token
        if extensions:
            body["extensions"] = extensions
        return body, status_for(errors, result.data)

    # -- /v1/flights/{flightId}/telemetry -----------------------------------------
    async def ingest_ndjson(self, request: Request) -> Response:
        request_id: str = request.state.request_id
        principal: Principal = request.state.principal
        try:
            if not principal.can("write"):
                raise Forbidden("Your role does not allow 'write'")
            try:
                flight_id = uuid.UUID(request.path_params["flight_id"])
            except ValueError:
                raise BadUserInput("flightId is not a valid id") from None
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in ("application/x-ndjson", "application/jsonl", "application/json-seq"):
                raise BadUserInput("Content-Type must be application/x-ndjson")
            session = self.db.session(principal, request.headers.get(CONSISTENCY_HEADER))
            out = await ingest(
                session,
                principal,
                self.settings,
                flight_id,
                ndjson_points(
                    _body(request, self.settings.limits.ingest_idle_timeout_s),
                    self.settings.limits.ingest_max_line_bytes,
                ),
                source="ndjson",
                on_missing_partition=None if self.obs is None else self.obs.inc_missing_partition,
                max_rejections=self.settings.limits.ingest_max_rejections,
            )
        except GatewayError as err:
            return error_response(err, request_id)
        headers = {CONSISTENCY_HEADER: session.token} if session.token else {}
        return json_response(out.as_json(), 200, headers)


async def _body(request: Request, idle_s: float) -> AsyncIterator[bytes]:
    """The request body's chunks; ``BodyReadTimeout`` when none arrives for
    ``idle_s`` (ingest holds nothing in the database meanwhile, but the
    socket and the points read so far)."""
    stream = request.stream()
    while True:
        try:
            async with asyncio.timeout(idle_s):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyReadTimeout(
                f"No body bytes arrived for {idle_s:g} s; the upload was abandoned"
                " and nothing was stored",
                reason="BODY_READ_TIMEOUT",
            ) from None
        if chunk:
            yield chunk


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _get_operation(request: Request) -> dict[str, Any]:
    q = request.query_params
    variables: Any = None
    if q.get("variables"):
        try:
            variables = orjson.loads(q["variables"])
        except orjson.JSONDecodeError:
            raise BadUserInput("variables is not valid JSON") from None
    return _check_operation(
        {"query": q.get("query"), "variables": variables, "operationName": q.get("operationName")}
    )


def _single_operation_name(document: DocumentNode | None) -> str | None:
    defs = document.definitions if document is not None else ()
    ops = [d for d in defs if isinstance(d, OperationDefinitionNode)]
    return ops[0].name.value if len(ops) == 1 and ops[0].name is not None else None


def _check_operation(op: Any) -> dict[str, Any]:
    if not isinstance(op, dict):
        raise BadUserInput("Each operation must be a JSON object")
    query, variables, name = op.get("query"), op.get("variables"), op.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadUserInput("query must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadUserInput("variables must be a JSON object")
    if name is not None and not isinstance(name, str):
        raise BadUserInput("operationName must be a string")
    return {"query": query, "variables": variables, "operationName": name}
