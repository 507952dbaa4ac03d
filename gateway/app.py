"""The HTTP app: Starlette routes, plain ASGI middleware (request id, body
size limit, authentication), and the lifespan that opens and closes the
database pools and observability.

Middleware order, outermost first (one place):
observability (server span, X-Trace-Id) -> request id -> body limit -> auth.

Must not: run SQL itself (the org check goes through ``gateway.data``) or
know GraphQL types (``gateway.api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import graphiql
from gateway.api.documents import DocumentCache
from gateway.api.errors import gateway_error_json
from gateway.api.http import GraphQLHttp, error_response, json_response
from gateway.api.schema import build_schema
from gateway.auth import Principal, TokenVerifier, bearer_token
from gateway.config import Settings
from gateway.data import organizations
from gateway.db.database import Database
from gateway.errors import BadUserInput, Forbidden, GatewayError, QueryTooComplex, Unauthenticated
from gateway.observability import Observability

log = logging.getLogger("dbx.app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ORG_CACHE_TTL_S = 30.0
# Paths that take no JWT. /readyz and /metrics check the ops token instead
# (``ops_access``): probes stay cheap, node details are the operator's.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class BodyTooLarge(QueryTooComplex):
    http_status = 413
    default_message = "The request body is too large"


@dataclass
class ActiveOrgs:
    """Organizations seen active recently (per process), so the org check
    costs a query at most every ``ttl_s`` per org."""

    ttl_s: float = ORG_CACHE_TTL_S
    seen: dict[uuid.UUID, float] = field(default_factory=dict)

    def fresh(self, org_id: uuid.UUID) -> bool:
        t = self.seen.get(org_id)
        return t is not None and time.monotonic() - t < self.ttl_s

    def remember(self, org_id: uuid.UUID) -> None:
        if len(self.seen) > 100_000:
            self.seen.clear()
        self.seen[org_id] = time.monotonic()


@dataclass
class Runtime:
    """Everything the lifespan builds, handed to middleware and routes."""

    settings: Settings
    obs: Observability
    db: Database
    verifier: TokenVerifier
    graphql: GraphQLHttp
    orgs: ActiveOrgs


def _runtime(scope: Scope) -> Runtime:
    return scope["state"]["runtime"]  # type: ignore[no-any-return]


async def _send_error(send: Send, scope: Scope, err: GatewayError) -> None:
    response = error_response(err, scope.get("state", {}).get("request_id"))
    await response(scope, _noop_receive, send)


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestIdMiddleware:
    """Echo a safe incoming X-Request-ID or make one; every response carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        # 128 random bits from the process's PRNG: unique, and unlike
        # uuid4 (os.urandom) no system call per request
        rid = incoming if SAFE_REQUEST_ID.match(incoming) else f"{random.getrandbits(128):032x}"
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, rid.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """413 for bodies over the cap: at once from Content-Length, or as soon
    as the streamed body passes it. Ingest has its own, larger cap."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = _runtime(scope).settings.limits
        cap = limits.max_ingest_bytes if scope["path"].startswith("/v1/") else limits.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            await _send_error(
                send, scope, BodyTooLarge(f"The request body is larger than {cap} bytes")
            )
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(f"The request body is larger than {cap} bytes")
            return message

        await self.app(scope, limited, send)


class AuthMiddleware:
    """Bearer JWT -> ``Principal`` in ``scope['state']``, and the token's org
    must exist and be active; otherwise 401 before any GraphQL runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or _is_ide_page(scope):
            await self.app(scope, receive, send)
            return
        rt = _runtime(scope)
        headers = dict(scope["headers"])
        try:
            header = headers.get(b"authorization")
            principal = rt.verifier.verify(
                bearer_token(None if header is None else header.decode("latin-1"))
            )
            await _check_org(rt, principal)
        except GatewayError as err:
            await _send_error(send, scope, err)
            return
        scope["state"]["principal"] = principal
        rt.obs.bind_request(request_id=scope["state"].get("request_id"), org_id=principal.org_id)
        await self.app(scope, receive, send)


def _is_ide_page(scope: Scope) -> bool:
    if scope["path"].startswith(graphiql.ASSET_PREFIX):
        return True  # the IDE's own files; the route refuses them in prod
    if (
        scope["method"] != "GET"
        or scope["path"] != "/graphql"
        or b"query=" in scope.get("query_string", b"")
    ):
        return False
    return b"text/html" in dict(scope["headers"]).get(b"accept", b"")


async def _check_org(rt: Runtime, principal: Principal) -> None:
    if rt.orgs.fresh(principal.org_id):
        return
    status = await rt.db.run(principal, "read", None, organizations.status, principal.org_id)
    if status is None:
        # A replica may not have replayed a just-created org yet: ask the primary.
        status = await rt.db.run(principal, "write", None, organizations.status, principal.org_id)
    if status != "active":
        raise Unauthenticated("Unknown or suspended organization")
    rt.orgs.remember(principal.org_id)


class Gateway(Starlette):
    """Starlette with observability outermost: outside even Starlette's own
    error middleware, so a masked 500 still carries ``X-Trace-Id`` and is
    counted."""

    def __init__(self, *args: Any, obs: Observability, **kwargs: Any) -> None:
        self._obs = obs
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._obs.wrap_asgi(super().build_middleware_stack())


async def _graphql(request: Request) -> Response:
    rt: Runtime = request.state.runtime
    return await rt.graphql.graphql(request)


async def _ingest(request: Request) -> Response:
    rt: Runtime = request.state.runtime
    return await rt.graphql.ingest_ndjson(request)


async def _graphiql_asset(request: Request) -> Response:
    rt: Runtime = request.state.runtime
    if rt.settings.is_prod:
        return error_response(
            BadUserInput("The GraphQL IDE is disabled"), getattr(request.state, "request_id", None)
        )
    return graphiql.asset(request.path_params["name"])


async def _healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


def ops_access(settings: Settings, authorization: str | None) -> GatewayError | None:
    """None when the request may see operational details (``/metrics``,
    the nodes in ``/readyz``: DSNs, addresses, errors), else why not.

    With ``DBX_OPS_TOKEN`` set, only ``Authorization: Bearer <token>``
    may (compared in constant time). Unset, dev is open and prod refuses."""
    token = settings.ops_token
    if token is None:
        if settings.is_prod:
            return Forbidden("Operational details are off: the operator has not set DBX_OPS_TOKEN")
        return None
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.encode()
    ):
        return None
    return Unauthenticated("Operational details need Authorization: Bearer <DBX_OPS_TOKEN>")


async def _readyz(request: Request) -> Response:
    """200 or 503 by whether the primary is usable. The node details only
    for the ops token (a kubelet sends none and gets ``{"ready": ...}``);
    a wrong token is refused."""
    rt: Runtime = request.state.runtime
    ready = rt.db.router.primary.usable
    authorization = request.headers.get("authorization")
    denied = ops_access(rt.settings, authorization)
    if denied is None:
        return json_response({"ready": ready, "nodes": rt.db.describe()}, 200 if ready else 503)
    if authorization is not None and isinstance(denied, Unauthenticated):
        return error_response(denied, getattr(request.state, "request_id", None))
    return json_response({"ready": ready}, 200 if ready else 503)


async def _metrics(request: Request) -> Response:
    rt: Runtime = request.state.runtime
    denied = ops_access(rt.settings, request.headers.get("authorization"))
    if denied is not None:
        return error_response(denied, getattr(request.state, "request_id", None))
    text = rt.obs.metrics_text(rt.db.describe())
    return Response(text, media_type="text/plain; version=0.0.4")


async def _on_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, GatewayError):
        return error_response(exc, getattr(request.state, "request_id", None))
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"request_id": getattr(request.state, "request_id", None)},
    )
    body = {
        "errors": [gateway_error_json(GatewayError(), getattr(request.state, "request_id", None))]
    }
    return Response(orjson.dumps(body), status_code=500, media_type="application/json")


def create_app(
    settings: Settings | None = None,
    *,
    observability: Observability | None = None,
    configure_logging: bool = True,
) -> Starlette:
    """The app; ``observability`` may be given (tests count statements with
    it). Logs go out as JSON lines unless ``configure_logging`` is False."""
    settings = settings if settings is not None else Settings.from_env()
    obs = observability if observability is not None else Observability(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if configure_logging:
            obs.configure_logging()
        db = Database(settings, observer=obs)
        await db.start()
        schema = build_schema(obs.strawberry_extensions())
        documents = DocumentCache(schema._schema, settings.limits, prod=settings.is_prod)
        runtime = Runtime(
            settings=settings,
            obs=obs,
            db=db,
            verifier=TokenVerifier(settings),
            graphql=GraphQLHttp(
                schema=schema, documents=documents, settings=settings, db=db, obs=obs
            ),
            orgs=ActiveOrgs(),
        )
        tune_gc(settings.gc_thresholds)
        gauges = asyncio.create_task(obs.node_gauge_loop(db.describe))
        try:
            yield {"runtime": runtime}
        finally:
            gauges.cancel()
            await db.close()
            obs.shutdown()

    routes = [
        Route("/graphql", _graphql, methods=["GET", "POST"]),
        Route("/v1/flights/{flight_id}/telemetry", _ingest, methods=["POST"]),
        Route(graphiql.ASSET_PREFIX + "{name:path}", _graphiql_asset, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
    ]
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware),
        Middleware(AuthMiddleware),
    ]
    return Gateway(
        obs=obs,
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={Exception: _on_error},
    )


_gc_tuned = False


def tune_gc(thresholds: tuple[int, int, int] | None) -> None:
    """Once per process, when the app has started: everything alive then
    (schema, pools, modules) moves to the collector's permanent generation
    (``gc.freeze``) and the thresholds are raised, so the young-object churn
    of requests (spans, GraphQL results) does not keep re-scanning that heap."""
    global _gc_tuned
    if thresholds is None or _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
