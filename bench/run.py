"""``make bench`` / ``python -m bench.run [--quick] [--only Q1,Q2] [--size small]``:
DBX Gateway, PostGraphile v5 and raw asyncpg side by side in one run, on one
data set, with wrk; the report goes to ``bench/results/<date>-<name>.md`` and
to stdout.

Each query's cell is split into rounds (``--rounds``, 2 by default, 1 with
``--quick``) that alternate the order: raw asyncpg, the floor (``floor.py``),
PostGraphile, DBX, then the reverse. Each measured run also records where the
machine's CPU went per answered request (``cpu.py``).
Every server this starts is stopped when the run ends, also on errors and
Ctrl-C (``servers.Servers``).

Must not: edit the gateway, or leave processes or scratch state outside
``bench/.scratch`` and ``bench/results``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench import dataset, floor, ingest, machine, raw
from bench.cpu import CpuMeter, wait_drained
from bench.load import Measurement, combine, ensure_wrk, run_wrk
from bench.queries import DBX_DOCS, DBX_WALK, PGL_DOCS, PGL_WALK, QUERIES, Mix
from bench.report import Results, render
from bench.servers import (
    SCRATCH,
    Server,
    Servers,
    dbx_server,
    install_postgraphile,
    machine_cpu,
    pgl_server,
)
from gateway.auth import mint_token
from gateway.config import Settings

HERE = Path(__file__).resolve().parent
BODIES = 2000  # distinct request bodies per server and query


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="5 s per cell, 2 s warm-up")
    p.add_argument("--only", default="", help="comma-separated queries, e.g. Q1,Q2")
    p.add_argument("--size", choices=sorted(dataset.SIZES), default="default")
    p.add_argument("--seconds", type=float, help="measured seconds per cell (default 20)")
    p.add_argument(
        "--rounds",
        type=int,
        help="each cell's seconds split into this many rounds, servers in alternating order"
        " (default 2; 1 with --quick)",
    )
    p.add_argument("--warmup", type=float, help="warm-up seconds per cell (default 5)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="DBX workers = PostGraphile processes")
    p.add_argument(
        "--target",
        choices=["primary", "replica"],
        default="replica",
        help="where PostGraphile and raw asyncpg connect (PgBouncer session mode;"
        " replica: replica_1)",
    )
    p.add_argument(
        "--dbx-nodes",
        choices=["target", "all"],
        default="target",
        help="target: DBX reads from the --target node too (its only replica, or none with"
        " --target primary); all: DBX routes reads over every replica of the stack",
    )
    p.add_argument("--raw-tasks", type=int, default=32)
    p.add_argument("--pool", type=int, default=8, help="PostGraphile pool per process, raw pool")
    p.add_argument("--ingest-points", type=int, help="default 100000 (20000 with --quick)")
    p.add_argument("--no-ingest", action="store_true")
    p.add_argument("--no-dbx", action="store_true", help="skip DBX (e.g. while it cannot serve)")
    p.add_argument("--no-floor", action="store_true", help="skip the floor server (bench/floor.py)")
    p.add_argument("--name", default="", help="report name (default: quick or full)")
    a = p.parse_args(argv)
    a.seconds = a.seconds or (5.0 if a.quick else 20.0)
    a.rounds = max(1, a.rounds or (1 if a.quick else 2))
    a.warmup = a.warmup if a.warmup is not None else (2.0 if a.quick else 5.0)
    a.ingest_points = a.ingest_points or (20_000 if a.quick else 100_000)
    a.queries = [q.strip().upper() for q in a.only.split(",") if q.strip()] or list(QUERIES)
    unknown = set(a.queries) - set(QUERIES)
    if unknown:
        p.error(f"unknown queries: {', '.join(sorted(unknown))}")
    a.name = a.name or ("quick" if a.quick else "full")
    return a


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def post(url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(
        url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    data: dict[str, Any] = r.json()
    if r.status_code != 200 or data.get("errors"):
        raise RuntimeError(f"HTTP {r.status_code}: {json.dumps(data.get('errors'))[:300]}")
    out: dict[str, Any] = data["data"]
    return out


def walk_cursors(url: str, token: str, doc: str, root: str) -> list[str | None]:
    """[None, cursor of aircraft 0, 1, ...]: ``after`` values for every start."""
    out: list[str | None] = [None]
    after: str | None = None
    while True:
        page = post(url, token, doc, {"after": after})[root]
        out += [e["cursor"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def first_page_registrations(server: str, url: str, token: str) -> list[str]:
    if server == "dbx":
        data = post(url, token, DBX_DOCS["Q1"], {"after": None})["fleet"]
    else:
        data = post(url, token, PGL_DOCS["Q1"], {"after": None})["allAircrafts"]
    return [e["node"]["registration"] for e in data["edges"]]


def bodies_file(mix: Mix, server: str, query: str, run_dir: Path) -> Path:
    path = run_dir / f"{server}-{query}.ndjson"
    path.write_text("\n".join(mix.bodies(server, query, BODIES)) + "\n")
    return path


def measure_http(
    srv: Server, token: str, path: Path, a: argparse.Namespace, *, seconds: float, warmup: float
) -> Measurement:
    opts = {"seconds": warmup, "connections": a.connections, "threads": a.threads}
    if warmup > 0:
        run_wrk(srv.url, token, path, **opts)
    # abandoned requests of the warm-up (or of the previous run) finish first
    wait_drained(srv.worker_pids)
    meter = CpuMeter(srv.worker_pids, client_is_self=False)
    before, busy0 = srv.cpu(), machine_cpu()
    meter.start()
    opts["seconds"] = seconds
    m = run_wrk(srv.url, token, path, **opts)
    m.cpu_us = meter.stop(m.answered)
    busy1 = machine_cpu()
    m.cpu_split = [after - b for after, b in zip(srv.cpu(), before, strict=True)]
    m.machine_busy = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9)
    # ... and those of this run before whatever is measured next
    wait_drained(srv.worker_pids)
    return m


# DBX_* variables that carry secrets or addresses: never in a report
UNREPORTED = ("DSN", "SECRET", "KEY", "PASSWORD", "TOKEN")


def dbx_nodes_env(
    a: argparse.Namespace, target: str, on_replica: bool
) -> tuple[dict[str, str], str]:
    """The environment that points DBX's reads at the node the other servers
    use (``--dbx-nodes target``), and how the report names it. Variables set
    by the caller win."""
    if a.dbx_nodes == "all" or "DBX_REPLICA_DSNS" in os.environ:
        return {}, "reads routed over the stack's replicas through PgBouncer"
    if on_replica:
        return {"DBX_REPLICA_DSNS": target}, "its one replica is `dbx_replica_1`, the same node"
    env = {"DBX_REPLICA_DSNS": "", "DBX_ANALYTICS_PRIMARY_FALLBACK": "true"}
    return env, "no replicas: reads and analytics on the primary, the same node"


def dbx_settings() -> str:
    """The DBX_* variables this run changed, or "its default settings"."""
    changed = sorted(
        f"`{k}={v}`"
        for k, v in os.environ.items()
        if k.startswith("DBX_") and not any(word in k for word in UNREPORTED)
    )
    if not changed:
        return "its default settings"
    return "its default settings except " + ", ".join(changed)


def settings_lines(a: argparse.Namespace, target: str, dbx_nodes: str) -> list[str]:
    return [
        f"- wrk: {a.threads} threads, {a.connections} connections, {a.seconds:.0f} s per cell"
        f" after a {a.warmup:.0f} s warm-up; {BODIES} distinct bodies per cell, one drawn at"
        " random per request; a response with `errors` or a non-2xx status counts as an error",
        f"- each cell in {a.rounds} round(s) of {a.seconds / a.rounds:.0f} s, the servers'"
        " order reversed every round; rates are over all rounds, p50/p99 the rounds'"
        " percentiles weighted by their answered requests",
        f"- DBX: `dbx-gateway serve --workers {a.workers}` with {dbx_settings()}"
        f" ({dbx_nodes}; `--dbx-nodes {a.dbx_nodes}`)",
        f"- PostGraphile v5: {a.workers} node:cluster processes, pool {a.pool} each, as"
        f" `dbx_gateway` through {target}; `pgSettings` from the request's JWT"
        " (`dbx.org_id`, `dbx.user_id`), so RLS applies as for DBX",
        f"- raw asyncpg: {a.raw_tasks} tasks on a pool of {a.pool}, same tenant transaction,"
        f" through {target}",
        f"- floor: `bench/floor.py`, {a.workers} workers of bare ASGI on the same uvicorn as DBX"
        " running the raw column's SQL in the same tenant transaction, through the same node,"
        " answering the rows as JSON (no GraphQL, authentication, tracing or routing), with"
        " DBX's request bodies: the most an HTTP server in Python reaches here",
    ]


async def main_async(a: argparse.Namespace) -> Path:
    settings = Settings.from_env()
    status: dict[str, Any] = dataset.stack_status()
    dsns = status["dsns"]
    on_replica = a.target == "replica" and bool(dsns["gateway_replicas"])
    if on_replica:
        target = dsns["gateway_replicas"][0]
        target_label = "PgBouncer's session-mode `dbx_replica_1` (a replica)"
    else:
        target = dsns["gateway_primary"]
        target_label = "PgBouncer's session-mode `dbx` (primary)"
    dbx_env, dbx_nodes_label = dbx_nodes_env(a, target, on_replica)
    ensure_wrk()
    log(f"data set ({a.size}) ...")
    ds = await dataset.prepare(settings.owner_dsn, dataset.SIZES[a.size], log)
    log(ds.describe())
    await dataset.remove_bench_flights(settings.owner_dsn, ds.org_id)
    await dataset.settle(settings.owner_dsn)
    nodes = status["nodes"]
    late = await dataset.wait_for_replicas(
        next(n["admin_dsn"] for n in nodes if n["role"] == "primary"),
        [n["admin_dsn"] for n in nodes if n["role"] == "replica"],
        timeout_s=30,
    )
    node = install_postgraphile(log)
    secret = settings.jwt_secret or ""
    token = mint_token(settings, org_id=ds.org_id, role="analyst", subject="bench")
    operator = mint_token(settings, org_id=ds.org_id, role="operator", subject="bench")
    stamp = dt.datetime.now(dt.UTC)
    run_dir = SCRATCH / "runs" / stamp.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    results = Results(
        title=f"Benchmark {stamp:%Y-%m-%d %H:%M} UTC ({a.name})",
        command="python -m bench.run " + " ".join(sys.argv[1:]),
        machine=machine.describe(
            pg_version=await machine.postgres_version(settings.owner_dsn),
            node_bin=str(node),
            dataset=ds.describe(),
        ),
        settings=settings_lines(a, target_label, dbx_nodes_label),
    )
    results.notes += [f"replica {r} had not caught up when the run started" for r in late]
    mix = Mix(ds)
    with Servers() as servers:
        log("starting PostGraphile ...")
        pgl = servers.start(pgl_server(node, a.workers, target, secret, run_dir, a.pool), token)
        dbx: Server | None = None
        if not a.no_dbx:
            log("starting DBX ...")
            try:
                dbx = servers.start(dbx_server(a.workers, run_dir, dbx_env), token)
            except RuntimeError as exc:
                results.notes.append(f"DBX did not serve: {exc}")
        floor_srv: Server | None = None
        if not a.no_floor:
            log("starting the floor server ...")
            floor_srv = servers.start(
                floor.floor_server(a.workers, run_dir, target, ds.org_id), token
            )
        live = {"postgraphile": pgl, **({"dbx": dbx} if dbx else {})}
        mix.pgl_cursors = walk_cursors(pgl.url, token, PGL_WALK, "allAircrafts")
        if dbx is not None:
            try:
                mix.dbx_cursors = walk_cursors(dbx.url, token, DBX_WALK, "fleet")
            except RuntimeError as exc:
                results.notes.append(f"DBX fleet walk failed: {exc}")
        check_equivalence(live, token, ds, results)
        for q in a.queries:
            await run_query(q, a, mix, live, floor_srv, token, target, run_dir, results)
        if not a.no_ingest:
            log(f"ingest: {a.ingest_points:,} points per path ...")
            base = dbx.url.removesuffix("/graphql") if dbx else None
            results.ingest = await ingest.measure(
                settings.owner_dsn, ds, base, operator, a.ingest_points
            )
    labels = {
        "dbx": f"DBX ({a.workers} workers)",
        "postgraphile": f"PostGraphile v5 ({a.workers} processes)",
        "raw": f"raw asyncpg ({a.raw_tasks} tasks)",
        "floor": f"floor ({a.workers} workers)",
    }
    text = render(results, labels=labels, seconds=a.seconds)
    out = HERE / "results" / f"{stamp:%Y-%m-%d-%H%M}-{a.name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    log(f"written to {out.relative_to(HERE.parent)}")
    return out


def check_equivalence(
    live: dict[str, Server], token: str, ds: dataset.Dataset, results: Results
) -> None:
    """The first Q1 page must name the same 50 aircraft on every server."""
    expected = [r for r, _ in ds.registrations[:50]]
    for name, srv in live.items():
        try:
            got = first_page_registrations(name, srv.url, token)
        except RuntimeError as exc:
            results.notes.append(f"{name}: Q1 check failed: {exc}")
            continue
        if got != expected:
            results.notes.append(f"{name}: Q1's first page differs from the database's order")


async def run_query(
    q: str,
    a: argparse.Namespace,
    mix: Mix,
    live: dict[str, Server],
    floor_srv: Server | None,
    token: str,
    target: str,
    run_dir: Path,
    results: Results,
) -> None:
    """Every server that can answer ``q`` is measured ``a.rounds`` times for
    ``a.seconds / a.rounds`` each, in alternating order (raw, floor,
    PostGraphile, DBX, then the reverse), so a drift of the machine during the cell does
    not favour whoever runs first; the rounds are combined per server."""
    Runner = Callable[[float, float], Awaitable[Measurement]]
    runners: list[tuple[str, Runner]] = []

    async def raw_run(seconds: float, warmup: float) -> Measurement:
        return await raw.measure(
            target,
            mix.ds.org_id,
            mix.raw(q),
            seconds=seconds,
            warmup_s=warmup,
            tasks=a.raw_tasks,
            pool_size=a.pool,
        )

    runners.append(("raw", raw_run))
    if floor_srv is not None and q in floor.QUERIES:
        # DBX's bodies file: the DBX runner below writes it again, and both
        # servers then read the same bodies
        floor_path = bodies_file(mix, "dbx", q, run_dir)

        async def floor_run(seconds: float, warmup: float) -> Measurement:
            assert floor_srv is not None
            return measure_http(floor_srv, token, floor_path, a, seconds=seconds, warmup=warmup)

        runners.append(("floor", floor_run))
    elif floor_srv is not None:
        results.put(q, "floor", "n/a (opaque cursors)")
    for name, docs in (("postgraphile", PGL_DOCS), ("dbx", DBX_DOCS)):
        srv = live.get(name)
        if q not in docs:
            results.put(q, name, "n/a (no such field)")
            continue
        if srv is None:
            results.put(q, name, "n/a (not serving)")
            continue
        server_kind = "dbx" if name == "dbx" else "pgl"
        try:
            post(srv.url, token, docs[q], mix.variables(server_kind, q))
        except (RuntimeError, httpx.HTTPError, ValueError) as exc:
            results.put(q, name, "fails")
            results.notes.append(f"{name} {q}: {exc}")
            continue
        path = bodies_file(mix, server_kind, q, run_dir)

        async def http_run(
            seconds: float, warmup: float, srv: Server = srv, path: Path = path
        ) -> Measurement:
            return measure_http(srv, token, path, a, seconds=seconds, warmup=warmup)

        runners.append((name, http_run))
    parts: dict[str, list[Measurement]] = {name: [] for name, _ in runners}
    per_round = a.seconds / a.rounds
    for r in range(a.rounds):
        for name, run in runners if r % 2 == 0 else runners[::-1]:
            log(f"{q}: {name} (round {r + 1} of {a.rounds}) ...")
            parts[name].append(await run(per_round, a.warmup if r == 0 else 0.0))
    for name, rounds in parts.items():
        m = combine(rounds)
        if m.first_error:
            results.notes.append(f"{name} {q}: first error response: `{m.first_error}`")
        results.put(q, name, m)


def _interrupt(signum: int, frame: object) -> None:
    # unwinds the with-blocks, so Servers stops what it started
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # Ctrl-C and SIGTERM raise at once, also inside a blocking wrk run (the
    # asyncio runner's own SIGINT handling would wait for the next await);
    # set explicitly, as a parent shell may have started us with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main_async(a))
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
