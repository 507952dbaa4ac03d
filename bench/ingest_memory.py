"""Memory of a long NDJSON ingest stream: ``POST /v1/flights/{id}/telemetry``
of about 1 GB (``--mb``), generated while it is sent (nothing is held in
memory on the sending side either), against ``dbx-gateway serve --workers 1``.
The worker's resident memory (``VmRSS``) is sampled every 0.25 s; the
report gives it before the stream, at every tenth of the bytes sent, its
peak, and after, beside the points/s the stream reached.

    .venv/bin/python -m bench.ingest_memory            # ~1 GB, ~4.5M points
    .venv/bin/python -m bench.ingest_memory --mb 100   # a quick look

The points go to a fresh ``BENCH`` flight of the benchmark organization,
timed ~300 days back (a partition nothing else reads), and are deleted and
vacuumed away at the end (``dataset.remove_bench_flights``). Not a test: not
run by ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from bench import dataset, ingest, machine
from bench.cpu import COMPONENTS, CpuMeter
from bench.servers import Servers, dbx_server
from gateway.auth import mint_token
from gateway.config import Settings

HERE = Path(__file__).resolve().parent
CHUNK = 64 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """VmRSS of one process every ``every_s``, with the bytes sent so far."""

    def __init__(self, pid: int, sent: list[int], every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.sent, self.every_s = pid, sent, every_s
        self.samples: list[tuple[float, int, float]] = []  # (seconds, bytes sent, MiB)
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.stop.is_set():
            self.samples.append((time.perf_counter() - t0, self.sent[0], rss_mib(self.pid)))
            self.stop.wait(self.every_s)


def body(
    total_bytes: int, start: dt.datetime, sent: list[int], points: list[int]
) -> Iterator[bytes]:
    """NDJSON points 20 ms apart, in 64 KiB chunks, until ``total_bytes``."""
    rows = ingest._samples(1000, start, 3)  # values cycle; times never repeat
    buf = bytearray()
    i = 0
    step = dt.timedelta(milliseconds=20)
    while sent[0] + len(buf) < total_bytes:
        t, v = rows[i % len(rows)]
        buf += json.dumps(ingest._point(start + i * step, v)).encode() + b"\n"
        i += 1
        if len(buf) >= CHUNK:
            sent[0] += len(buf)
            points[0] = i
            yield bytes(buf)
            buf.clear()
    if buf:
        sent[0] += len(buf)
        points[0] = i
        yield bytes(buf)


async def main_async(a: argparse.Namespace) -> Path:
    settings = Settings.from_env()
    ds = await dataset.prepare(settings.owner_dsn, dataset.SIZES["default"], print)
    await dataset.remove_bench_flights(settings.owner_dsn, ds.org_id)
    owner = await asyncpg.connect(settings.owner_dsn)
    try:
        flight = (await ingest._new_flights(owner, ds, 1))[0]
    finally:
        await owner.close()
    operator = mint_token(settings, org_id=ds.org_id, role="operator", subject="bench")
    run_dir = HERE / ".scratch" / "runs" / f"memory-{time.strftime('%Y%m%d-%H%M%S')}"
    total = int(a.mb * 1_000_000)
    sent, points = [0], [0]
    with Servers() as servers:
        srv = servers.start(dbx_server(1, run_dir, {}), operator)
        pid = srv.worker_pids[0]
        before = rss_mib(pid)
        sampler = Sampler(pid, sent)
        sampler.start()
        # ~300 days back: a month the migrations made a partition for (12 back
        # to 12 ahead) and no benchmark query reads, so the rows deleted at the
        # end leave no bloat where the other benchmarks scan
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=300)
        headers = {"Authorization": f"Bearer {operator}", "Content-Type": "application/x-ndjson"}
        meter = CpuMeter([pid], client_is_self=True)  # the sender is a thread of this process
        meter.start()
        t0 = time.perf_counter()
        r = await asyncio.to_thread(
            httpx.post,
            srv.url.removesuffix("/graphql") + f"/v1/flights/{flight}/telemetry",
            content=body(total, start, sent, points),
            headers=headers,
            timeout=3600,
        )
        seconds = time.perf_counter() - t0
        cpu = meter.stop(max(points[0], 1))
        await asyncio.sleep(1.0)
        sampler.stop.set()
        sampler.join()
        after = rss_mib(pid)
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    note = await dataset.remove_bench_flights(settings.owner_dsn, ds.org_id)
    pg = await machine.postgres_version(settings.owner_dsn)
    lines = [
        f"# NDJSON ingest memory {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `python -m bench.ingest_memory --mb {a.mb:g}`",
        "",
        "## Machine",
        "",
        *(
            line.replace("; Node not installed", "")
            for line in machine.describe(pg_version=pg, node_bin=None, dataset=ds.describe())
        ),
        "",
        "## Stream",
        "",
        f"- {sent[0]:,} bytes, {points[0]:,} points, one request, 64 KiB chunks; HTTP"
        f" {r.status_code}; answer: `{json.dumps(answer)[:300]}`",
        f"- {seconds:.1f} s: {points[0] / seconds:,.0f} points/s,"
        f" {sent[0] / seconds / 1e6:.1f} MB/s",
        f"- `dbx-gateway serve --workers 1`, worker RSS before {before:.0f} MiB,"
        f" peak {max(s[2] for s in sampler.samples):.0f} MiB, after {after:.0f} MiB",
    ]
    lines.append(
        "- CPU per point (µs): "
        + ", ".join(f"{c} {cpu[c]:.1f}" for c in COMPONENTS)
        + " (server: the worker; client: this process, generating and sending the stream)"
    )
    if note:
        lines.append(f"- clean-up: {note}")
    lines += ["", "| bytes sent | seconds | worker RSS (MiB) |", "| --- | --- | --- |"]
    for tenth in range(11):
        mark = total * tenth / 10
        s = next((x for x in sampler.samples if x[1] >= mark), sampler.samples[-1])
        lines.append(f"| {s[1]:,} | {s[0]:.1f} | {s[2]:.0f} |")
    text = "\n".join(lines) + "\n"
    out = HERE / "results" / f"{time.strftime('%Y-%m-%d-%H%M', time.gmtime())}-ingest-memory.md"
    out.write_text(text)
    print(text)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=1000.0, help="stream size in MB (10^6 bytes)")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
