"""What tracing costs: the same query mix against the served gateway with
tracing off (``OTEL_SDK_DISABLED=true``), on with every request sampled and
exported (``always_on`` to an OTLP/HTTP endpoint), with the default sampler
(``parentbased_always_on``: every request without an incoming trace is
sampled), with every request sampled but nothing exported (what making the
spans costs alone), and with 10 % sampling, side by side in one run (rounds
interleaved, best round kept).

Besides req/s, the gateway worker's CPU time per served request (utime +
stime from ``/proc``, the export thread included) is reported: on a small,
shared machine it is much steadier than throughput, and with the worker
CPU-bound its ratio to "off" is the throughput ratio tracing would allow.

The OTLP endpoint is a local sink that accepts and drops what it is sent, so
the exporter's serialisation and HTTP calls are paid as in production.

The mix: Q2 (planned: one statement), and a resolver-path query (fleet page
with each aircraft's maintenance events, through loaders) that produces the
operation, field, loader-batch and SQL spans.

``--baseline DIR`` also runs every variant from another source tree (its
``gateway`` package first on ``PYTHONPATH``, e.g. ``git archive`` of an
earlier commit unpacked there), rounds interleaved with this tree's, and
prints this tree's req/s and CPU per request against the baseline's.

Usage: ``.venv/bin/python -m bench.tracing_bench [--seconds 10] [--rounds 2]
[--baseline DIR]`` (after ``make run``'s set-up; one gateway worker per
variant and tree).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg

from bench.cpu import wait_drained
from bench.load import run_wrk
from bench.servers import Servers, cpu_seconds, dbx_server
from gateway.config import Settings

RESOLVERS = (
    "query R($n: Int!) { fleet(first: $n) { edges { node { id registration"
    " maintenanceEvents { kind component performedAt } } } } }"
)
PLANNED = "query Q2($id: ID!) { flight(id: $id) { id flightNumber aircraft { registration } } }"


class _Sink(BaseHTTPRequestHandler):
    # keep-alive, as an OpenTelemetry Collector does (HTTP/1.0 would make the
    # exporter open a new connection for every batch)
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


async def _flight_ids(owner_dsn: str, slug: str) -> list[str]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        rows = await conn.fetch(
            "select f.id from dbx_aviation.flights f join dbx_aviation.organizations o"
            " on o.id = f.org_id where o.slug = $1 limit 500",
            slug,
        )
    finally:
        await conn.close()
    return [str(r["id"]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--org", default="skyline-airways")
    ap.add_argument("--baseline", type=Path, help="a source tree to compare with (see above)")
    args = ap.parse_args()
    settings = Settings.from_env()
    ids = asyncio.run(_flight_ids(settings.owner_dsn, args.org))
    if not ids:
        raise SystemExit(f"no flights for {args.org}: run `make run`'s set-up first")
    token = subprocess.run(
        [".venv/bin/dbx-gateway", "token", "--org", args.org, "--role", "viewer"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    rng = random.Random(5)
    bodies = [
        json.dumps({"query": RESOLVERS, "variables": {"n": rng.randint(5, 20)}})
        if i % 2
        else json.dumps({"query": PLANNED, "variables": {"id": rng.choice(ids)}})
        for i in range(2000)
    ]
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    variants = {
        "off": {"OTEL_SDK_DISABLED": "true"},
        "on, 100 %": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER": "always_on"},
        "100 %, not exported": {"OTEL_TRACES_EXPORTER": "none", "OTEL_TRACES_SAMPLER": "always_on"},
        "default sampler": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
        "10 %": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    }
    trees: dict[str, dict[str, str]] = {"": {}}
    if args.baseline is not None:
        if not (args.baseline / "gateway" / "__init__.py").exists():
            raise SystemExit(f"{args.baseline} has no gateway package")
        trees["baseline: "] = {"PYTHONPATH": str(args.baseline.resolve())}
    variants = {
        prefix + name: {**env, **tree_env}
        for name, env in variants.items()
        for prefix, tree_env in trees.items()
    }
    rates: dict[str, list[float]] = {k: [] for k in variants}
    cpu_ms: dict[str, list[float]] = {k: [] for k in variants}
    errors: dict[str, int] = dict.fromkeys(variants, 0)
    with tempfile.TemporaryDirectory() as tmp:
        bodies_file = Path(tmp) / "bodies.txt"
        bodies_file.write_text("\n".join(bodies) + "\n")
        with Servers() as servers:
            running = {
                name: servers.start(dbx_server(1, Path(tmp) / f"run{i}", env), token)
                for i, (name, env) in enumerate(variants.items())
            }
            for _ in range(args.rounds):
                for name, server in running.items():
                    run_wrk(server.url, token, bodies_file, seconds=2, connections=16, threads=2)
                    wait_drained(server.worker_pids)
                    cpu0 = sum(cpu_seconds(pid) for pid in server.worker_pids)
                    m = run_wrk(
                        server.url,
                        token,
                        bodies_file,
                        seconds=args.seconds,
                        connections=16,
                        threads=2,
                    )
                    cpu = sum(cpu_seconds(pid) for pid in server.worker_pids) - cpu0
                    rates[name].append(m.rate)
                    cpu_ms[name].append(1000 * cpu / max(m.requests - m.errors, 1))
                    errors[name] += m.errors
    sink.shutdown()
    print("| tracing | req/s (best round) | vs off | gateway CPU ms/req (best) | vs off | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in variants:
        prefix = name[: name.index(": ") + 2] if ": " in name else ""
        off, off_cpu = max(rates[prefix + "off"]), min(cpu_ms[prefix + "off"])
        best, cpu = max(rates[name]), min(cpu_ms[name])
        print(
            f"| {name} | {best:,.0f} | {best / off:.2f}x | {cpu:.3f} | {off_cpu / cpu:.2f}x"
            f" | {errors[name]} |"
        )
    if args.baseline is not None:
        print()
        print("| tracing | req/s vs baseline | CPU ms/req: baseline / this |")
        print("| --- | ---: | ---: |")
        for name in variants:
            if name.startswith("baseline: "):
                continue
            base = "baseline: " + name
            rate = max(rates[name]) / max(rates[base])
            print(f"| {name} | {rate:.3f}x | {min(cpu_ms[base]) / min(cpu_ms[name]):.3f}x |")


if __name__ == "__main__":
    main()
