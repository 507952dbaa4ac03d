"""The floor of any Python HTTP gateway on this machine: how close can a
server get to raw asyncpg at all, once HTTP is in the path?

``python -m bench.floor [--only Q2,Q4,Q5] [--seconds 10] [--rounds 2]``
(after ``make run``'s set-up) measures, side by side and in alternating
order, for each query:

- *raw asyncpg*: ``bench.raw``, the main benchmark's ceiling column;
- *floor*: the smallest server that does the same work over HTTP. Bare ASGI
  (no framework) on the same uvicorn, uvloop and httptools as DBX, 2 workers
  on ``SO_REUSEPORT`` sockets like ``dbx-gateway serve``. It reads the JSON
  body, picks the raw column's SQL from the operation name and variables,
  runs it in the same tenant transaction (the same three round trips, the
  same node through PgBouncer, a pool of 8 per worker) and answers the rows
  as JSON with orjson. It has no GraphQL, no authentication, no tracing, no
  routing and no limits;
- *DBX*: ``dbx-gateway serve --workers 2`` with its defaults, reading from
  the same replica.

All three get the same wrk load (32 connections, the same request bodies
for floor and DBX) with the waits of ``cpu.wait_drained``. The report
(stdout and ``bench/results/<date>-floor.md``) gives each rate, the ratios
floor/raw, DBX/raw and DBX/floor, and CPU per answered request by
component. When floor/raw is under a target for DBX/raw, no HTTP gateway
written in Python reaches that target on this machine. DBX/floor is what
GraphQL, authentication, routing, limits and tracing cost on top.

Must not: write to the database, or serve anything beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvicorn
import uvloop

from bench import dataset, machine, raw
from bench.cpu import CpuMeter, wait_drained
from bench.load import Measurement, combine, run_wrk
from bench.queries import RAW_Q2, RAW_Q3, Mix
from bench.servers import REPO, SCRATCH, Server, Servers, dbx_server, free_port
from gateway.auth import mint_token
from gateway.config import Settings
from gateway.data.analytics import daily_stats_query
from gateway.data.analytics_telemetry import TelemetryScope, stats_query

QUERIES = ("Q2", "Q3", "Q4", "Q5", "Q6")
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


def _serve_worker(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        "bench.floor:create_app",
        factory=True,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve(port: int, workers: int) -> None:
    """``python -m bench.floor --serve PORT --workers N``: the floor server."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_serve_worker, args=(port,)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            proc.terminate()


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


def measure_http(srv: Server, token: str, path: Path, seconds: float, warmup: float) -> Measurement:
    if warmup > 0:
        run_wrk(srv.url, token, path, seconds=warmup, connections=32, threads=2)
    wait_drained(srv.worker_pids)
    meter = CpuMeter(srv.worker_pids, client_is_self=False)
    meter.start()
    m = run_wrk(srv.url, token, path, seconds=seconds, connections=32, threads=2)
    m.cpu_us = meter.stop(m.answered)
    wait_drained(srv.worker_pids)
    return m


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    p.add_argument("--only", default="Q2,Q4,Q5", help=f"queries among {','.join(QUERIES)}")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=2)
    return p.parse_args(argv)


def _cell(m: Measurement, unit: str) -> str:
    return f"{m.rate:,.0f} {unit} (p50 {m.p50_ms:.1f} / p99 {m.p99_ms:.1f} ms, {m.errors} errors)"


async def run(a: argparse.Namespace) -> str:
    settings = Settings.from_env()
    status = dataset.stack_status()
    replica = status["dsns"]["gateway_replicas"][0]
    ds = await dataset.prepare(settings.owner_dsn, dataset.SIZES["default"], print)
    token = mint_token(settings, org_id=ds.org_id, role="analyst", subject="bench")
    mix = Mix(ds)
    queries = [q for q in a.only.split(",") if q]
    run_dir = SCRATCH / "runs" / f"floor-{dt.datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    cpu_rows: list[str] = []
    with Servers() as servers:
        floor = servers.start(floor_server(a.workers, run_dir, replica, ds.org_id), token)
        dbx = servers.start(dbx_server(a.workers, run_dir, {"DBX_REPLICA_DSNS": replica}), token)
        for q in queries:
            path = run_dir / f"{q}.ndjson"
            path.write_text("\n".join(mix.bodies("dbx", q, 2000)) + "\n")
            parts: dict[str, list[Measurement]] = {"raw": [], "floor": [], "dbx": []}
            for r in range(a.rounds):
                warm = a.warmup if r == 0 else 0.0
                order = ["raw", "floor", "dbx"] if r % 2 == 0 else ["dbx", "floor", "raw"]
                for name in order:
                    print(f"{q}: {name} (round {r + 1} of {a.rounds}) ...", flush=True)
                    if name == "raw":
                        m = await raw.measure(
                            replica,
                            ds.org_id,
                            mix.raw(q),
                            seconds=a.seconds,
                            warmup_s=warm,
                            tasks=32,
                            pool_size=POOL,
                        )
                    else:
                        srv = floor if name == "floor" else dbx
                        m = measure_http(srv, token, path, a.seconds, warm)
                    parts[name].append(m)
            got = {name: combine(ms) for name, ms in parts.items()}
            rr, fr, dr = (got[n].rate for n in ("raw", "floor", "dbx"))
            rows.append(
                f"| {q} | {_cell(got['raw'], 'ops/s')} | {_cell(got['floor'], 'req/s')}"
                f" | {_cell(got['dbx'], 'req/s')} | {fr / rr:.2f}x | {dr / rr:.2f}x"
                f" | {dr / fr:.2f}x |"
            )
            for name in ("raw", "floor", "dbx"):
                c = got[name].cpu_us
                cpu_rows.append(
                    f"| {q} | {name} | {c['server']:,.0f} | {c['client']:,.0f}"
                    f" | {c['PostgreSQL']:,.0f} | {c['PgBouncer']:,.0f} | {c['other']:,.0f}"
                    f" | {sum(c.values()):,.0f} |"
                )
    pg = await _pg_version(replica)
    lines = [
        f"# Floor of a Python HTTP gateway, {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        *machine.describe(pg_version=pg, node_bin=None, dataset=ds.describe()),
        "",
        f"`python -m bench.floor --only {a.only} --seconds {a.seconds:g}"
        f" --rounds {a.rounds}`: every column reads from `dbx_replica_1` through"
        " PgBouncer; floor and DBX get the same request bodies from wrk (32"
        " connections, 2 threads); rounds alternate raw, floor, DBX then the reverse.",
        "",
        "| query | raw asyncpg (32 tasks) | floor (bare ASGI, 2 workers) | DBX (2 workers)"
        " | floor / raw | DBX / raw | DBX / floor |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "CPU per answered request (µs): *server* the HTTP server's workers, *client*"
        " wrk or the raw asyncpg process, *PostgreSQL* every node:",
        "",
        "| query | measured | server | client | PostgreSQL | PgBouncer | other | total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *cpu_rows,
    ]
    return "\n".join(lines) + "\n"


async def _pg_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("show server_version"))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.serve is not None:
        serve(a.serve, a.workers)
        return 0
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(run(a))
    out = REPO / "bench" / "results" / f"{dt.datetime.now():%Y-%m-%d-%H%M}-floor.md"
    out.write_text(report)
    print(report)
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
