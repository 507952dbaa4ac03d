"""Independent computations of every analytics figure from raw rows (read as
the owner), with Python's ``statistics`` and plain loops: no SQL. They follow
the formulas as documented (README / ``gateway.data.analytics``), not the
gateway's code.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.support.analytics_data import Fleet

RECENT = timedelta(days=30)
COLUMN = {
    "ALTITUDE_M": "altitude_m",
    "AIRSPEED_MS": "airspeed_ms",
    "VERTICAL_SPEED_MS": "vertical_speed_ms",
    "ENGINE_TEMP_C": "engine_temp_c",
    "FUEL_FLOW_KG_H": "fuel_flow_kg_h",
}


def spec(specs: dict[str, Any], key: str, default: float) -> float:
    v = specs.get(key)
    return float(v) if isinstance(v, int | float) else default


def in_scope(
    p: dict[str, Any],
    flight_id: uuid.UUID | None,
    aircraft_id: uuid.UUID | None,
    start: datetime | None,
    end: datetime | None,
) -> bool:
    return (
        (flight_id is None or p["flight_id"] == flight_id)
        and (aircraft_id is None or p["aircraft_id"] == aircraft_id)
        and (start is None or p["recorded_at"] >= start)
        and (end is None or p["recorded_at"] < end)
    )


def stats(fleet: Fleet, metric: str, **scope: Any) -> dict[str, Any]:
    col = COLUMN[metric]
    vals = [p[col] for p in fleet.telemetry if in_scope(p, **scope) and p[col] is not None]
    if not vals:
        return {"count": 0}
    q = statistics.quantiles(vals, n=100, method="inclusive")  # linear, like numpy's default
    return {
        "count": len(vals), "min": min(vals), "max": max(vals), "avg": statistics.fmean(vals),
        "stddev": statistics.stdev(vals) if len(vals) > 1 else None,
        "p50": statistics.median(vals), "p95": q[94], "p99": q[98],
    }  # fmt: skip


def series(
    fleet: Fleet, metric: str, bucket_s: int, window: int | None, origin: datetime, **scope: Any
) -> list[dict[str, Any]]:
    col = COLUMN[metric]
    buckets: dict[datetime, list[float]] = defaultdict(list)
    for p in fleet.telemetry:
        if in_scope(p, **scope) and p[col] is not None:
            k = int((p["recorded_at"] - origin).total_seconds() // bucket_s)
            buckets[origin + timedelta(seconds=k * bucket_s)].append(p[col])
    out: list[dict[str, Any]] = []
    for b in sorted(buckets):
        v = buckets[b]
        out.append({"bucket": b, "count": len(v), "avg": statistics.fmean(v), "min": min(v),
                    "max": max(v)})  # fmt: skip
    for i, row in enumerate(out):
        if window is None:
            row["moving_average"] = None
        else:
            prev = out[max(0, i - window + 1) : i + 1]
            row["moving_average"] = statistics.fmean(r["avg"] for r in prev)
    return out


def _hours(f: dict[str, Any]) -> float:
    return float((f["arrived_at"] - f["departed_at"]).total_seconds()) / 3600.0


def _hours_since(fleet: Fleet, aid: uuid.UUID, since: datetime | None) -> float:
    return sum(
        _hours(f)
        for f in fleet.flights
        if f["aircraft_id"] == aid
        and f["arrived_at"] is not None
        and f["arrived_at"] <= fleet.as_of
        and (since is None or f["departed_at"] >= since)
    )


def _last(fleet: Fleet, aid: uuid.UUID, kind: str | None) -> datetime | None:
    ats = [
        m["performed_at"]
        for m in fleet.maintenance
        if m["aircraft_id"] == aid and (kind is None or m["kind"] == kind)
        and m["performed_at"] <= fleet.as_of
    ]  # fmt: skip
    return max(ats) if ats else None


def risk(fleet: Fleet) -> dict[uuid.UUID, dict[str, Any]]:
    """aircraft id -> {score, level, factors: {name: (value, contribution)}}."""
    out: dict[uuid.UUID, dict[str, Any]] = {}
    start = fleet.as_of - RECENT
    for a in fleet.aircraft:
        s = a["specs"]
        ceiling = spec(s, "service_ceiling_m", 12500)
        vmax = spec(s, "max_speed_ms", 180)
        tmax = spec(s, "max_engine_temp_c", 900)
        interval = spec(s, "inspection_interval_h", 100)
        recent = [
            p for p in fleet.telemetry
            if p["aircraft_id"] == a["id"] and start <= p["recorded_at"] < fleet.as_of
        ]  # fmt: skip

        def above(v: float | None, limit: float) -> bool:
            return v is not None and v > limit

        exc = sum(
            1 for p in recent
            if above(p["altitude_m"], ceiling) or above(p["airspeed_ms"], vmax)
            or above(p["engine_temp_c"], tmax)
        )  # fmt: skip
        anom = sum(1 for p in recent if p["vertical_speed_ms"] is not None
                   and abs(p["vertical_speed_ms"]) > 25)  # fmt: skip
        n = len(recent)
        hours = _hours_since(fleet, a["id"], _last(fleet, a["id"], None))
        made: date | None = a["manufactured_on"]
        age = (fleet.as_of.astimezone(UTC).date() - made).days / 365.25 if made else 0.0
        sev = {
            "hours_since_maintenance": (hours, min(1.0, hours / interval), 0.35),
            "exceedances": (exc, min(1.0, exc / n / 0.01) if n else 0.0, 0.30),
            "anomalies": (anom, min(1.0, anom / n / 0.005) if n else 0.0, 0.25),
            "age": (age, min(1.0, age / 30), 0.10),
        }
        score = sum(100 * w * s_ for _, s_, w in sev.values())
        level = ("CRITICAL" if score >= 75 else "HIGH" if score >= 50
                 else "MEDIUM" if score >= 25 else "LOW")  # fmt: skip
        out[a["id"]] = {
            "score": score,
            "level": level,
            "factors": {k: (v, 100 * w * s_) for k, (v, s_, w) in sev.items()},
        }
    return out


def forecast(fleet: Fleet) -> dict[uuid.UUID, dict[str, Any]]:
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for a in fleet.aircraft:
        interval = spec(a["specs"], "inspection_interval_h", 100)
        hours = _hours_since(fleet, a["id"], _last(fleet, a["id"], "inspection"))
        recent = sum(
            _hours(f) for f in fleet.flights
            if f["aircraft_id"] == a["id"] and f["arrived_at"] is not None
            and fleet.as_of - RECENT <= f["departed_at"] < fleet.as_of
            and f["arrived_at"] <= fleet.as_of
        )  # fmt: skip
        remaining = interval - hours
        per_day = recent / 30
        days = 0.0 if remaining <= 0 else (remaining / per_day if per_day > 0 else None)
        out[a["id"]] = {"hours_since": hours, "remaining": remaining, "per_day": per_day,
                        "days": days}  # fmt: skip
    return out


def daily(fleet: Fleet, start: date, end: date) -> dict[date, dict[str, Any]]:
    days: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"flights": 0, "hours": 0.0, "aircraft": set(), "alt": [], "speed": [], "exc": 0}
    )
    for f in fleet.flights:
        if f["status"] == "cancelled":
            continue
        d = days[f["departed_at"].astimezone(UTC).date()]
        d["flights"] += 1
        d["aircraft"].add(f["aircraft_id"])
        if f["arrived_at"] is not None:
            d["hours"] += _hours(f)
    specs = {a["id"]: a["specs"] for a in fleet.aircraft}
    for p in fleet.telemetry:
        d = days[p["recorded_at"].astimezone(UTC).date()]
        s = specs[p["aircraft_id"]]
        if p["altitude_m"] is not None:
            d["alt"].append(p["altitude_m"])
        if p["airspeed_ms"] is not None:
            d["speed"].append(p["airspeed_ms"])
        if (
            (p["altitude_m"] or 0) > spec(s, "service_ceiling_m", 12500)
            or (p["airspeed_ms"] or 0) > spec(s, "max_speed_ms", 180)
            or (p["engine_temp_c"] or 0) > spec(s, "max_engine_temp_c", 900)
        ):
            d["exc"] += 1
    return {k: v for k, v in days.items() if start <= k <= end}


def fleet_stats(fleet: Fleet, since: datetime) -> list[dict[str, Any]]:
    """Per aircraft by registration: flights departed at or after ``since``."""
    out = []
    for a in sorted(fleet.aircraft, key=lambda a: a["registration"]):
        mine = [
            f for f in fleet.flights if f["aircraft_id"] == a["id"] and f["departed_at"] >= since
        ]
        arrived = [f for f in mine if f["arrived_at"] is not None]
        out.append(
            {
                "id": a["id"],
                "registration": a["registration"],
                "flights": len(mine),
                "completed": sum(f["status"] == "completed" for f in mine),
                "hours": round(sum(_hours(f) for f in arrived), 2),
                "last": max((f["departed_at"] for f in mine), default=None),
            }
        )
    return out


PLAUSIBLE = {
    "altitude_m": (-450.0, 15_000.0),
    "airspeed_ms": (0.0, 190.0),
    "vertical_speed_ms": (-100.0, 100.0),
    "engine_temp_c": (-60.0, 1_200.0),
    "fuel_flow_kg_h": (0.0, 20_000.0),
}


def quality(fleet: Fleet, flight_id: uuid.UUID) -> dict[str, Any]:
    pts = sorted(
        (p for p in fleet.telemetry if p["flight_id"] == flight_id),
        key=lambda p: p["recorded_at"],
    )
    times = [p["recorded_at"] for p in pts]
    dts = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    median = statistics.median(dts) if dts else None
    gaps = sum(1 for d in dts if median is not None and d > 3 * median)
    oor = sum(
        1 for p in pts
        if any(p[c] is not None and not lo <= p[c] <= hi for c, (lo, hi) in PLAUSIBLE.items())
    )  # fmt: skip
    dups = fleet.duplicates.get(flight_id, 0)
    pen = (
        40 * min(1.0, (gaps / len(dts) if dts else 0) / 0.10)
        + 30 * min(1.0, (oor / len(pts) if pts else 0) / 0.05)
        + 20 * min(1.0, (dups / (len(pts) + dups) if pts or dups else 0) / 0.10)
    )
    return {"points": len(pts), "median": median, "gaps": gaps, "oor": oor, "dups": dups,
            "intervals": len(dts), "score": max(0.0, 100 - pen) if pts else 0.0}  # fmt: skip


def as_dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
