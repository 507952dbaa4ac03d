"""Telemetry samples for one planned flight: a climb / cruise / descent profile
of altitude, airspeed and vertical speed, a position moving along the route
(or a circuit for training flights, a survey grid for drones), heading, engine
temperature and fuel flow, plus the flight's planned exceedances.

Normal samples stay inside the type's limits (ceiling, maximum speed, engine
redline), so the only exceedances are those recorded in the flight's
``metadata``; every value stays inside the table's check constraints.

Must not: touch the database or draw from any random source but the flight's
own (seeded with its id), so samples do not depend on generation order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from gateway.admin.seed_catalog import bearing_deg
from gateway.admin.seed_model import FlightPlan
from gateway.data.telemetry import METRIC_COLUMNS

TELEMETRY_COLUMNS = ("flight_id", "recorded_at", "org_id", "aircraft_id", *METRIC_COLUMNS)
KM_PER_DEG = 111.32


def telemetry_rows(f: FlightPlan) -> Iterator[tuple[Any, ...]]:
    """The flight's samples as tuples in ``TELEMETRY_COLUMNS`` order."""
    n = f.points
    if n <= 0:
        return
    t = f.type
    rng = random.Random(f.id.int)
    dur = float(f.duration_s)
    eo, ed = f.origin.elevation_m, f.destination.elevation_m
    cr, dr = t.climb_rate_ms, t.descent_rate_ms
    if t.engine_type == "electric":
        cruise = eo + rng.uniform(*t.cruise_alt_m)  # height above the field
    else:
        cruise = rng.uniform(*t.cruise_alt_m)
    cruise = min(cruise, t.service_ceiling_m - 300)
    # a short flight cannot reach the planned level: cap it so that climb and
    # descent together take at most 90% of the flight
    cap = (0.9 * dur + eo / cr + ed / dr) / (1 / cr + 1 / dr)
    cruise = max(min(cruise, cap), max(eo, ed) + 30)
    climb_t = max(cruise - eo, 1.0) / cr
    desc_t = max(cruise - ed, 1.0) / dr
    desc_from = dur - desc_t
    v_cruise, v_max = t.cruise_speed_ms, t.max_speed_ms
    temp_max = t.max_engine_temp_c
    (tc, tcr, td), (fc, fcr, fd) = t.engine_temp_c, t.fuel_flow_kg_h
    electric = t.engine_type == "electric"

    lat0, lon0 = f.origin.lat, f.origin.lon
    coslat = max(math.cos(math.radians(lat0)), 0.1)
    dlat, dlon = f.destination.lat - lat0, f.destination.lon - lon0
    route_heading = bearing_deg(f.origin, f.destination)
    path_km = t.tas_ms * dur / 1000.0
    radius_km = path_km / (2 * math.pi * 3)  # three laps of a circuit
    leg_km, spacing_km = 0.6, 0.08  # survey grid

    overrides: dict[int, tuple[str, float]] = {e.index: (e.kind, e.value) for e in f.exceedances}
    step_us = int(f.span_s * 1e6) // n
    base_time = f.departed_at
    fid, org, ac = f.id, f.org_id, f.aircraft_id
    gauss = rng.gauss

    for i in range(n):
        ts = i * step_us / 1e6
        if ts < climb_t:
            u = ts / climb_t
            alt = eo + cr * climb_t * (1.15 * u - 0.15 * u * u)
            vs = cr * (1.15 - 0.3 * u) + gauss(0, 0.2)
            speed = t.rotate_speed_ms + (0.92 * v_cruise - t.rotate_speed_ms) * min(1.0, 4 * u)
            temp, flow = tc, fc
        elif ts < desc_from:
            alt = cruise + 8 * math.sin(ts / 97.0)
            vs = gauss(0, 0.25)
            speed = v_cruise
            temp, flow = tcr, fcr
        else:
            u = min((ts - desc_from) / desc_t, 1.0)
            alt = cruise - (cruise - ed) * u
            vs = -dr + gauss(0, 0.2)
            speed = v_cruise - (v_cruise - t.approach_speed_ms) * u
            temp, flow = td, fd
        speed += gauss(0, 0.012 * v_cruise)
        temp += gauss(0, 0.006 * temp)
        flow = 0.0 if electric else max(flow * (1 + gauss(0, 0.02)), 0.0)

        frac = ts / dur if dur > 0 else 0.0
        if f.pattern == "route":
            lat, lon = lat0 + dlat * frac, lon0 + dlon * frac
            heading = route_heading + gauss(0, 1.5)
        elif f.pattern == "circuit":
            theta = 2 * math.pi * 3 * frac
            north, east = radius_km * math.sin(theta), radius_km * (1 - math.cos(theta))
            lat, lon = lat0 + north / KM_PER_DEG, lon0 + east / (KM_PER_DEG * coslat)
            heading = math.degrees(theta) + gauss(0, 2.0)
        else:
            d = t.tas_ms * ts / 1000.0
            leg = int(d // leg_km)
            within = d - leg * leg_km
            east = within if leg % 2 == 0 else leg_km - within
            north = (leg % 25) * spacing_km
            lat, lon = lat0 + north / KM_PER_DEG, lon0 + east / (KM_PER_DEG * coslat)
            heading = (90.0 if leg % 2 == 0 else 270.0) + gauss(0, 3.0)

        alt = min(max(alt, -400.0), t.service_ceiling_m - 1)
        speed = min(max(speed, 0.0), v_max - 0.5)
        temp = min(temp, temp_max - 2)
        hit = overrides.get(i)
        if hit is not None:
            if hit[0] == "engine_temp":
                temp = hit[1]
            else:
                speed = hit[1]
        yield (
            fid,
            base_time + timedelta(microseconds=i * step_us),
            org,
            ac,
            round(alt, 1),
            round(speed, 2),
            round(lat, 6),
            round(lon, 6),
            round(heading % 360.0, 1),
            round(vs, 2),
            round(temp, 1),
            round(flow, 1),
        )
