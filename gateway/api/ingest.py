"""Telemetry ingest shared by ``ingestTelemetry`` and the NDJSON route:
per-point validation in Python, then one write transaction that stages the
accepted points with binary COPY and moves them into the partitioned table
with ``ON CONFLICT DO NOTHING`` (duplicates counted, never stored twice).
All accepted points land, or none.

Must not: write SQL (``gateway.data.telemetry``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gateway.auth import Principal
from gateway.config import Settings
from gateway.data import telemetry as telemetry_data
from gateway.db.database import DbSession
from gateway.errors import NotFound, Unavailable

log = logging.getLogger("dbx.ingest")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
STAGE_CHUNK = 5000
# camelCase key -> (column, lowest, highest); ranges mirror the table's checks.
METRICS: dict[str, tuple[str, float, float]] = {
    "altitudeM": ("altitude_m", -500, 20000),
    "airspeedMs": ("airspeed_ms", 0, 200),
    "latitude": ("latitude", -90, 90),
    "longitude": ("longitude", -180, 180),
    "headingDeg": ("heading_deg", 0, 360),
    "verticalSpeedMs": ("vertical_speed_ms", -200, 200),
    "engineTempC": ("engine_temp_c", -100, 1500),
    "fuelFlowKgH": ("fuel_flow_kg_h", 0, 50000),
}
KEYS = frozenset(["recordedAt", *METRICS])

Record = tuple[Any, ...]  # (recorded_at, *metrics in telemetry_data.METRIC_COLUMNS order)


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "reason": r.reason} for r in self.rejected],
        }


def _time(value: Any) -> dt.datetime | str:
    if isinstance(value, str):
        if len(value) > 64:
            return "recordedAt is not an ISO 8601 timestamp"
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return "recordedAt is not an ISO 8601 timestamp"
    if not isinstance(value, dt.datetime):
        return "recordedAt is required and must be a timestamp"
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def validate_point(raw: Any, now: dt.datetime, future_skew_s: int) -> Record | str:
    """A record ready to stage, or the reason the point is rejected."""
    if not isinstance(raw, Mapping):
        return "a point must be a JSON object"
    unknown = sorted(str(k) for k in raw if k not in KEYS)
    if unknown:
        return f"unknown field {unknown[0][:40]!r}"
    t = _time(raw.get("recordedAt"))
    if isinstance(t, str):
        return t
    if t < EPOCH:
        return "recordedAt is before 1970-01-01"
    if t > now + dt.timedelta(seconds=future_skew_s):
        return f"recordedAt is more than {future_skew_s} s in the future"
    values: list[Any] = [t]
    for key, (_, lo, hi) in METRICS.items():
        v = raw.get(key)
        if v is None:
            values.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"{key} must be a number"
        v = float(v)
        if not math.isfinite(v):
            return f"{key} must be a finite number"
        if not lo <= v <= hi:
            return f"{key} must be between {lo:g} and {hi:g}"
        values.append(v)
    return tuple(values)


def _is_missing_partition(exc: BaseException) -> bool:
    # 23514 with no constraint: the row matched no partition (a table's own
    # CHECK constraints always carry a name).
    return (
        isinstance(exc, asyncpg.exceptions.CheckViolationError)
        and exc.sqlstate == "23514"
        and getattr(exc, "constraint_name", None) is None
    )


async def ingest(
    session: DbSession,
    principal: Principal,
    settings: Settings,
    flight_id: uuid.UUID,
    points: AsyncIterable[tuple[int, Any]] | Iterable[tuple[int, Any]],
    *,
    source: str,
    on_missing_partition: Callable[[], None] | None = None,
) -> IngestOutcome:
    """Validate and store ``(index, raw point)`` pairs for one flight."""
    now = dt.datetime.now(dt.UTC)
    skew = settings.telemetry_future_skew_s
    out = IngestOutcome()
    staged = 0
    months: set[str] = set()
    async with session.write() as conn:
        flight = await telemetry_data.flight_for_ingest(conn, principal.org_id, flight_id)
        if flight is None:
            raise NotFound("Flight not found")
        await telemetry_data.create_staging(conn)
        buf: list[Record] = []

        async def flush() -> None:
            nonlocal staged, buf
            if buf:
                await telemetry_data.stage(conn, buf)
                staged += len(buf)
                buf = []

        def take(index: int, raw: Any) -> None:
            rec = validate_point(raw, now, skew)
            if isinstance(rec, str):
                out.rejected.append(Rejection(index, rec))
            else:
                buf.append(rec)
                months.add(rec[0].astimezone(dt.UTC).strftime("%Y-%m"))

        if isinstance(points, AsyncIterable):
            async for index, raw in points:
                take(index, raw)
                if len(buf) >= STAGE_CHUNK:
                    await flush()
        else:
            for index, raw in points:
                take(index, raw)
                if len(buf) >= STAGE_CHUNK:
                    await flush()
        await flush()
        inserted = 0
        if staged:
            try:
                inserted = await telemetry_data.insert_staged(
                    conn, principal.org_id, flight_id, flight["aircraft_id"]
                )
            except asyncpg.exceptions.CheckViolationError as exc:
                if not _is_missing_partition(exc):
                    raise
                if on_missing_partition is not None:
                    on_missing_partition()
                month_list = ", ".join(sorted(months))
                log.error(
                    "telemetry partition missing",
                    extra={"months": month_list, "flight_id": str(flight_id)},
                )
                raise Unavailable(
                    f"The telemetry partition for {month_list} is missing; nothing was stored."
                    " This is a server-side problem: an operator must create the partition"
                    " (dbx-gateway maintain)."
                ) from None
        out.accepted = inserted
        out.duplicates = staged - inserted
        await telemetry_data.record_batch(
            conn,
            principal.org_id,
            flight_id,
            accepted=out.accepted,
            duplicates=out.duplicates,
            rejected=len(out.rejected),
            source=source,
            user_id=principal.subject,
        )
    return out
