"""The floor of any Python HTTP gateway on this machine: the smallest server
that does the raw asyncpg column's work over HTTP, measured by ``bench.run``
as the *floor* column beside DBX, PostGraphile and raw asyncpg.

Bare ASGI (no framework) served by ``gateway.serving.serve`` like DBX: the same
uvicorn, uvloop and httptools, workers on ``SO_REUSEPORT`` sockets. It
reads DBX's request body, picks the raw column's SQL from the operation name
and variables (Q2-Q6; Q1's cursors are opaque), runs it in the same tenant
transaction (the same three round trips, the same node through PgBouncer, a
pool of 8 per worker) and answers the rows as JSON with orjson. It has no
GraphQL, no authentication, no tracing, no routing and no limits.

When floor/raw is under a target for DBX/raw, no HTTP gateway written in
Python reaches that target on this machine; DBX/floor is what GraphQL,
authentication, routing, limits and tracing cost on top.

``python -m bench.floor --serve PORT --workers N`` serves it (``bench.run``
starts it so, with ``FLOOR_DSN`` and ``FLOOR_ORG`` set).

Must not: write to the database, or serve anything beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import raw
from bench.queries import RAW_Q2, RAW_Q3
from bench.servers import REPO, Server, free_port
from gateway.data.analytics import daily_stats_query
from gateway.data.analytics_telemetry import TelemetryScope, stats_query
from gateway.serving import serve

QUERIES = ("Q2", "Q3", "Q4", "Q5", "Q6")  # those with a floor
POOL = 8
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def floor_sql(org: uuid.UUID, query: str) -> tuple[str, tuple[Any, ...]]:
    """The raw column's SQL and arguments for one request body of ``query``
    (a ``bench.queries`` body: DBX's document and its variables)."""
    body = orjson.loads(query)
    name = body["query"].split("(", 1)[0].split()[-1]
    v = body["variables"]
    if name == "Q2":
        return RAW_Q2, (org, uuid.UUID(v["id"]))
    if name == "Q3":
        return RAW_Q3, (_when(v["since"]),)
    if name == "Q4":
        q = daily_stats_query(org, date.fromisoformat(v["from"]), date.fromisoformat(v["to"]))
        return q.sql, tuple(q.args)
    if name in ("Q5", "Q6"):
        aircraft = uuid.UUID(v["aircraftId"]) if "aircraftId" in v else None
        scope = TelemetryScope(org, None, aircraft, _when(v["from"]), _when(v["to"]))
        q = stats_query(scope, "ALTITUDE_M")
        return q.sql, tuple(q.args)
    raise ValueError(f"no floor SQL for {name}")


def _jsonable(value: Any) -> Any:
    return str(value)  # Decimal and the like; orjson does UUID and datetime


class FloorApp:
    """Bare ASGI: body in, the raw SQL in a tenant transaction, rows out."""

    def __init__(self) -> None:
        self.dsn = os.environ["FLOOR_DSN"]
        self.org = uuid.UUID(os.environ["FLOOR_ORG"])
        self.begin = raw._begin(self.org)
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] != "/graphql" or self.pool is None:
            await self._answer(send, 404, b'{"errors":["not found"]}')
            return
        if b"__typename" in body:  # the readiness probe of ``Server.wait_ready``
            await self._answer(send, 200, b'{"data":{"__typename":"Query"}}')
            return
        try:
            sql, args = floor_sql(self.org, body.decode())
        except (KeyError, ValueError, orjson.JSONDecodeError):
            # the wrk script counts "errors" in a body as a failed request
            await self._answer(send, 400, b'{"errors":["bad request"]}')
            return
        async with self.pool.acquire() as conn:
            await conn.execute(self.begin)
            try:
                rows = await conn.fetch(sql, *args)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        out = orjson.dumps({"data": [dict(r) for r in rows]}, default=_jsonable)
        await self._answer(send, 200, out)

    async def _answer(self, send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(self.dsn, min_size=POOL, max_size=POOL)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> FloorApp:
    return FloorApp()


def floor_server(workers: int, run_dir: Path, dsn: str, org: uuid.UUID) -> Server:
    port = free_port()
    return Server(
        name="floor",
        port=port,
        argv=[sys.executable, "-m", "bench.floor", "--serve", str(port), "--workers", str(workers)],
        env={**os.environ, "FLOOR_DSN": dsn, "FLOOR_ORG": str(org)},
        cwd=REPO,
        workers=workers,
        log_path=run_dir / "floor.log",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    p.add_argument("--serve", type=int, required=True, help="port on 127.0.0.1")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    serve("127.0.0.1", a.serve, a.workers, app="bench.floor:create_app")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
