"""Telemetry ingest rates, side by side on the same rows: a raw binary
``COPY`` as the owner into a fresh flight; DBX's NDJSON endpoint
``POST /v1/flights/{id}/telemetry`` (operator token, body streamed in 64 KiB
chunks); and ``ingestTelemetry`` over GraphQL in batches of 1000 points.

Each path gets its own fresh flight (flight number ``BENCH...``) in the
benchmark organization; the flights and their points are deleted afterwards.
Raw COPY and NDJSON alternate for ``rounds`` rounds (best round of each is
reported), and each timed run starts once the replicas have replayed what the
previous one wrote: on this machine the replicas' WAL replay shares the same
two cores, and would otherwise slow down whichever path runs second.

Must not: touch any flight it did not create.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.dataset import Dataset, remove_bench_flights, stack_status, wait_for_replicas
from gateway.admin.seed_profile import TELEMETRY_COLUMNS

BATCH = 1000
COLUMNS = TELEMETRY_COLUMNS
KEYS = (
    "altitudeM",
    "airspeedMs",
    "latitude",
    "longitude",
    "headingDeg",
    "verticalSpeedMs",
    "engineTempC",
    "fuelFlowKgH",
)
INGEST_DOC = (
    "mutation I($flightId: ID!, $points: [TelemetryPointInput!]!) {"
    " ingestTelemetry(flightId: $flightId, points: $points) { accepted duplicates rejected"
    " { index reason } } }"
)


@dataclass
class IngestRate:
    path: str
    points: int
    seconds: float
    accepted: int
    note: str = ""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0


def _samples(n: int, start: datetime, seed: int) -> list[tuple[datetime, list[float]]]:
    rng = random.Random(seed)
    step = timedelta(milliseconds=20)
    out = []
    for i in range(n):
        out.append(
            (
                start + i * step,
                [
                    round(rng.uniform(0, 12000), 1),
                    round(rng.uniform(60, 250) % 200, 2),
                    round(rng.uniform(40, 55), 6),
                    round(rng.uniform(-5, 15), 6),
                    round(rng.uniform(0, 359.9), 1),
                    round(rng.uniform(-15, 15), 2),
                    round(rng.uniform(400, 900), 1),
                    round(rng.uniform(800, 3000), 1),
                ],
            )
        )
    return out


def _point(t: datetime, v: list[float]) -> dict[str, Any]:
    return {"recordedAt": t.isoformat(), **dict(zip(KEYS, v, strict=True))}


async def _new_flights(owner: asyncpg.Connection, ds: Dataset, n: int) -> list[uuid.UUID]:
    aircraft = ds.registrations[0][1]
    departed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    ids = []
    async with owner.transaction():
        await owner.execute("select set_config('dbx.user_id', 'dbx-bench', true)")
        for i in range(n):
            ids.append(
                await owner.fetchval(
                    "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin,"
                    " destination, departed_at, status) values ($1, $2, $3, 'EDDF', 'LFPG', $4,"
                    " 'in_flight') returning id",
                    ds.org_id,
                    aircraft,
                    f"BENCH{random.randrange(100, 999)}",
                    departed + timedelta(seconds=i),
                )
            )
    return ids


async def _caught_up() -> None:
    """Until the replicas have replayed what the primary has written so far."""
    nodes: Any = stack_status()["nodes"]
    await wait_for_replicas(
        next(n["admin_dsn"] for n in nodes if n["role"] == "primary"),
        [n["admin_dsn"] for n in nodes if n["role"] == "replica"],
        timeout_s=60,
    )


async def measure(
    owner_dsn: str,
    ds: Dataset,
    dbx_base: str | None,
    operator_token: str,
    points: int,
    rounds: int = 2,
) -> list[IngestRate]:
    await remove_bench_flights(owner_dsn, ds.org_id)
    owner = await asyncpg.connect(owner_dsn)
    best: dict[str, IngestRate] = {}

    def keep(rate: IngestRate) -> None:
        old = best.get(rate.path)
        if old is None or rate.rate > old.rate or (old.note and not rate.note):
            best[rate.path] = rate

    try:
        ids = await _new_flights(owner, ds, 2 * rounds + 1)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        rows = _samples(points, start, 1)
        aircraft = ds.registrations[0][1]
        for r in range(rounds):
            records = [(ids[2 * r], t, ds.org_id, aircraft, *v) for t, v in rows]
            await _caught_up()
            t0 = time.perf_counter()
            await owner.copy_records_to_table(
                "flight_telemetry", schema_name="dbx_aviation", columns=COLUMNS, records=records
            )
            keep(IngestRate("raw binary COPY (owner)", points, time.perf_counter() - t0, points))
            if dbx_base is not None:
                await _caught_up()
                keep(_ndjson(dbx_base, ids[2 * r + 1], rows, operator_token))
        if dbx_base is not None:
            await _caught_up()
            keep(_graphql(dbx_base, ids[-1], rows, operator_token))
    finally:
        await owner.close()
    results = list(best.values())
    for rate in results[:2]:
        if rounds > 1:
            rate.note = "; ".join(n for n in (rate.note, f"best of {rounds} rounds") if n)
    note = await remove_bench_flights(owner_dsn, ds.org_id)
    if note:
        results[-1].note = "; ".join(n for n in (results[-1].note, note) if n)
    return results


def _ndjson(
    base: str, flight: uuid.UUID, rows: list[tuple[datetime, list[float]]], token: str
) -> IngestRate:
    body = b"".join(json.dumps(_point(t, v)).encode() + b"\n" for t, v in rows)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    t0 = time.perf_counter()
    try:
        r = httpx.post(
            f"{base}/v1/flights/{flight}/telemetry", content=chunks(), headers=headers, timeout=600
        )
    except httpx.HTTPError as exc:
        return IngestRate("DBX NDJSON endpoint", len(rows), 0, 0, f"failed: {exc}")
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        return IngestRate(
            "DBX NDJSON endpoint", len(rows), dt, 0, f"HTTP {r.status_code}: {r.text[:200]}"
        )
    accepted = int(r.json().get("accepted", 0))
    note = "" if accepted == len(rows) else f"accepted {accepted} of {len(rows)}"
    return IngestRate("DBX NDJSON endpoint (streamed)", len(rows), dt, accepted, note)


def _graphql(
    base: str, flight: uuid.UUID, rows: list[tuple[datetime, list[float]]], token: str
) -> IngestRate:
    bodies = [
        json.dumps(
            {
                "query": INGEST_DOC,
                "variables": {
                    "flightId": str(flight),
                    "points": [_point(t, v) for t, v in rows[i : i + BATCH]],
                },
            }
        )
        for i in range(0, len(rows), BATCH)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    accepted = 0
    problems = ""
    t0 = time.perf_counter()
    with httpx.Client(headers=headers, timeout=120) as client:
        for b in bodies:
            r = client.post(f"{base}/graphql", content=b)
            data = r.json()
            if r.status_code != 200 or data.get("errors"):
                problems = f"HTTP {r.status_code}: {json.dumps(data.get('errors'))[:200]}"
                break
            accepted += int(data["data"]["ingestTelemetry"]["accepted"])
    dt = time.perf_counter() - t0
    return IngestRate(
        f"DBX `ingestTelemetry` (GraphQL, batches of {BATCH})", len(rows), dt, accepted, problems
    )
