"""Telemetry points as clients send them, checked one by one before
anything is stored: the metric keys and their ranges (mirroring the table's
checks), the timestamp rules (after 1970, within the months the deployment
keeps, at most the future-skew window ahead), and a rejected point's reason.
Shared by ``ingestTelemetry`` and the NDJSON route (``gateway.api.ingest``).

Must not: write SQL or touch a connection.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
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


@dataclass(frozen=True)
class BadLine:
    """An NDJSON line rejected before it became a point."""

    reason: str


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


@dataclass(frozen=True)
class KeptMonths:
    """The time range a point may fall in beyond the fixed checks: not older
    than the organization's retention nor than the oldest partition, and
    the partitions that exist (sorted ``[lower, upper)`` bounds)."""

    retention_days: int | None = None
    lowers: tuple[dt.datetime, ...] = ()
    uppers: tuple[dt.datetime, ...] = ()

    def covers(self, t: dt.datetime) -> bool:
        i = bisect.bisect_right(self.lowers, t) - 1
        return i >= 0 and t < self.uppers[i]


def point_validator(
    now: dt.datetime, future_skew_s: int, kept: KeptMonths | None = None
) -> Callable[[Any], Record | str]:
    """``validate_point`` with the clock fixed for one batch: the hot loop of
    ingest, so the common case (a dict of known keys and finite numbers in
    range) takes the shortest path."""
    latest = now + dt.timedelta(seconds=future_skew_s)
    too_late = f"recordedAt is more than {future_skew_s} s in the future"
    # the earliest time kept, and what to say about a point before it
    earliest, too_early = EPOCH, "recordedAt is before 1970-01-01"
    if kept is not None and kept.retention_days is not None:
        horizon = now - dt.timedelta(days=kept.retention_days)
        if horizon > earliest:
            earliest = horizon
            too_early = (
                "recordedAt is older than this organization's telemetry retention"
                f" ({kept.retention_days} days)"
            )
    if kept is not None and kept.lowers and kept.lowers[0] > earliest:
        earliest = kept.lowers[0]
        too_early = (
            f"recordedAt is before {earliest.astimezone(dt.UTC):%Y-%m-%d},"
            " the oldest telemetry this deployment keeps"
        )
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
        if t < earliest:
            return "recordedAt is before 1970-01-01" if t < EPOCH else too_early
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


# -- the spool: accepted points in PostgreSQL's binary COPY format ------------
