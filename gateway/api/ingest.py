"""Telemetry ingest shared by ``ingestTelemetry`` and the NDJSON route:
per-point validation in Python, then one write transaction that stages the
accepted points with binary COPY and moves them into the partitioned table
with ``ON CONFLICT DO NOTHING`` (duplicates counted, never stored twice).
All accepted points land, or none.

Must not: write SQL (``gateway.data.telemetry``).
"""

from __future__ import annotations

import asyncio
import contextlib
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
INGEST_CHUNK = 20_000  # points staged and moved at a time
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
    return point_validator(now, future_skew_s)(raw)


_RANGES = tuple((key, float(lo), float(hi)) for key, (_, lo, hi) in METRICS.items())


def point_validator(now: dt.datetime, future_skew_s: int) -> Callable[[Any], Record | str]:
    """``validate_point`` with the clock fixed for one batch: the hot loop of
    ingest, so the common case (a dict of known keys and finite numbers in
    range) takes the shortest path."""
    latest = now + dt.timedelta(seconds=future_skew_s)
    too_late = f"recordedAt is more than {future_skew_s} s in the future"
    isfinite = math.isfinite

    def check(raw: Any) -> Record | str:
        if not isinstance(raw, Mapping):
            return "a point must be a JSON object"
        if not KEYS.issuperset(raw):
            unknown = sorted(str(k) for k in raw if k not in KEYS)
            return f"unknown field {unknown[0][:40]!r}"
        t = _time(raw.get("recordedAt"))
        if isinstance(t, str):
            return t
        if t < EPOCH:
            return "recordedAt is before 1970-01-01"
        if t > latest:
            return too_late
        values: list[Any] = [t]
        get = raw.get
        for key, lo, hi in _RANGES:
            v = get(key)
            if v is None:
                values.append(None)
                continue
            kind = type(v)
            if kind is not float:
                if kind is bool or not isinstance(v, int | float):
                    return f"{key} must be a number"
                v = float(v)
            if not isfinite(v):
                return f"{key} must be a finite number"
            if not lo <= v <= hi:
                return f"{key} must be between {lo:g} and {hi:g}"
            values.append(v)
        return tuple(values)

    return check


def _months(first: dt.datetime, last: dt.datetime) -> str:
    a, b = first.astimezone(dt.UTC), last.astimezone(dt.UTC)
    out: list[str] = []
    y, m = a.year, a.month
    while (y, m) <= (b.year, b.month) and len(out) < 24:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return ", ".join(out)


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
    check = point_validator(dt.datetime.now(dt.UTC), settings.telemetry_future_skew_s)
    out = IngestOutcome()
    staged = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def take(index: int, raw: Any) -> Record | None:
        nonlocal staged, first, last
        rec = check(raw)
        if isinstance(rec, str):
            out.rejected.append(Rejection(index, rec))
            return None
        staged += 1
        t = rec[0]
        if first is None or t < first:
            first = t
        if last is None or t > last:
            last = t
        return rec

    async with session.write() as conn:
        flight = await telemetry_data.flight_for_ingest(conn, principal.org_id, flight_id)
        if flight is None:
            raise NotFound("Flight not found")
        await telemetry_data.create_staging(conn)
        aircraft_id = flight["aircraft_id"]

        async def move(chunk: list[Record]) -> int:
            # stage one chunk and move it into the partitioned table; later
            # chunks see earlier ones (same transaction), so a repeat across
            # chunks is a conflict like any other
            await telemetry_data.stage(conn, chunk)
            moved = await telemetry_data.insert_staged(
                conn, principal.org_id, flight_id, aircraft_id
            )
            await telemetry_data.clear_staging(conn)
            return moved

        # Pipelined: PostgreSQL moves chunk k while Python validates chunk
        # k+1 (the connection is only ever used by the one pending task).
        inserted = 0
        pending: asyncio.Task[int] | None = None
        chunk: list[Record] = []

        async def hand_over() -> None:
            nonlocal pending, chunk, inserted
            if pending is not None:
                inserted += await pending
            pending = asyncio.create_task(move(chunk)) if chunk else None
            chunk = []

        try:
            if isinstance(points, AsyncIterable):
                async for index, raw in points:
                    rec = take(index, raw)
                    if rec is not None:
                        chunk.append(rec)
                        if len(chunk) >= INGEST_CHUNK:
                            await hand_over()
            else:
                for index, raw in points:
                    rec = take(index, raw)
                    if rec is not None:
                        chunk.append(rec)
                        if len(chunk) >= INGEST_CHUNK:
                            await hand_over()
                            await asyncio.sleep(0)  # let the chunk go out
            await hand_over()
            await hand_over()
        except asyncpg.exceptions.CheckViolationError as exc:
            if not _is_missing_partition(exc):
                raise
            if on_missing_partition is not None:
                on_missing_partition()
            month_list = _months(first, last) if first and last else "?"
            log.error(
                "telemetry partition missing",
                extra={"months": month_list, "flight_id": str(flight_id)},
            )
            raise Unavailable(
                f"The telemetry partition for {month_list} is missing; nothing was stored."
                " This is a server-side problem: an operator must create the partition"
                " (dbx-gateway maintain)."
            ) from None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
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
