"""Per-flight data quality for ``analytics.dataQuality``: a 0-100 score with
its parts.

Score = 100 minus the sum of the parts' penalties, rounded to one decimal
(0 for a flight without samples). Each part's penalty is
``max_penalty * min(1, ratio / full_at)``:

- ``sampling_gaps``: intervals between consecutive samples longer than 3x the
  flight's median interval; ratio = gaps / intervals; full 40 points at 10 %.
- ``out_of_range``: samples with any metric outside ``PLAUSIBLE_RANGES``
  (tighter than the table's CHECK constraints, which reject only impossible
  values); ratio = such samples / samples; full 30 points at 5 %.
- ``duplicates_rejected``: points a client sent again and ingest rejected as
  duplicates (sum of ``telemetry_ingest_batches.duplicates``); ratio =
  duplicates / (samples + duplicates); full 20 points at 10 %.
- ``non_monotonic_time``: intervals <= 0 s; computed, but always 0, because
  the key ``(flight_id, recorded_at)`` makes each flight's timestamps unique
  and they are read in time order (10 points).

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.data.analytics_telemetry import Query
from gateway.db.connection import TenantConnection
from gateway.errors import NotFound

# Plausible ranges (tighter than the table's CHECK constraints).
PLAUSIBLE_RANGES = {
    "altitude_m": (-450.0, 15_000.0),
    "airspeed_ms": (0.0, 190.0),
    "vertical_speed_ms": (-100.0, 100.0),
    "engine_temp_c": (-60.0, 1_200.0),
    "fuel_flow_kg_h": (0.0, 20_000.0),
}
GAP_FACTOR = 3.0


@dataclass(frozen=True)
class QualityPart:
    name: str
    value: float
    ratio: float
    max_penalty: float
    penalty: float
    detail: str


@dataclass(frozen=True)
class DataQuality:
    flight_id: uuid.UUID
    score: float
    points: int
    median_interval_s: float | None
    parts: list[QualityPart]


def quality_query(org_id: uuid.UUID, flight_id: uuid.UUID) -> Query:
    in_range = " and ".join(
        f"coalesce(p.{col} between {lo!r}::float8 and {hi!r}::float8, true)"
        for col, (lo, hi) in PLAUSIBLE_RANGES.items()
    )
    sql = (
        "with p as (select t.recorded_at, t.altitude_m, t.airspeed_ms, t.vertical_speed_ms,"
        " t.engine_temp_c, t.fuel_flow_kg_h,"
        " extract(epoch from t.recorded_at - lag(t.recorded_at) over (order by t.recorded_at))"
        "::float8 as dt"
        " from dbx_aviation.flight_telemetry t where t.org_id = $1 and t.flight_id = $2),"
        " med as (select percentile_cont(0.5) within group (order by p.dt) as m from p"
        " where p.dt is not null)"
        " select exists (select 1 from dbx_aviation.flights f"
        " where f.org_id = $1 and f.id = $2) as found,"
        " (select count(*) from p) as points, (select m from med) as median_dt,"
        " (select count(*) from p where p.dt is not null) as intervals,"
        " (select count(*) from p, med where p.dt > $3 * med.m) as gaps,"
        " (select count(*) from p where p.dt <= 0) as non_monotonic,"
        f" (select count(*) from p where not ({in_range})) as out_of_range,"
        " (select coalesce(sum(b.duplicates), 0) from dbx_aviation.telemetry_ingest_batches b"
        " where b.org_id = $1 and b.flight_id = $2) as duplicates"
    )
    return Query(sql, (org_id, flight_id, GAP_FACTOR))


def _part(
    name: str, value: int, ratio: float, full_at: float, max_penalty: float, detail: str
) -> QualityPart:
    penalty = max_penalty * min(1.0, ratio / full_at) if full_at > 0 else 0.0
    return QualityPart(name, value, round(ratio, 6), max_penalty, round(penalty, 2), detail)


async def data_quality(
    conn: TenantConnection, org_id: uuid.UUID, flight_id: uuid.UUID
) -> DataQuality:
    q = quality_query(org_id, flight_id)
    r = await conn.fetchrow(q.sql, *q.args)
    if r is None or not r["found"]:
        raise NotFound("No such flight")
    points, intervals = int(r["points"]), int(r["intervals"])
    gaps, oor, dups, nm = (
        int(r["gaps"]),
        int(r["out_of_range"]),
        int(r["duplicates"]),
        int(r["non_monotonic"]),
    )
    median = r["median_dt"]
    received = points + dups
    parts = [
        _part("sampling_gaps", gaps, gaps / intervals if intervals else 0.0, 0.10, 40.0,
              f"{gaps} of {intervals} intervals longer than 3x the median"
              + (f" ({median:g} s)" if median is not None else "")),
        _part("out_of_range", oor, oor / points if points else 0.0, 0.05, 30.0,
              f"{oor} of {points} samples outside plausible ranges"),
        _part("duplicates_rejected", dups, dups / received if received else 0.0, 0.10, 20.0,
              f"{dups} duplicate points rejected at ingest"),
        _part("non_monotonic_time", nm, nm / intervals if intervals else 0.0, 0.0001, 10.0,
              "timestamps are unique and ordered per flight by the key (flight_id, recorded_at)"),
    ]  # fmt: skip
    score = 0.0 if points == 0 else round(max(0.0, 100.0 - sum(p.penalty for p in parts)), 1)
    return DataQuality(flight_id, score, points, median, parts)
