"""The demo data set as plain values: organizations, aircraft, flights and
maintenance events, derived from ``SeedSize`` and an anchor time only.

Every id is a uuid5 of a stable name and every random choice comes from a
``random.Random`` seeded with the organization's slug, so the same size and
anchor always give the same rows.

Must not: touch the database (``seed.py`` loads the plan) or generate
telemetry samples (``seed_profile.py`` does, from a ``FlightPlan``).
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

from gateway.admin.seed_catalog import (
    AIRPORTS,
    DEMO_ORGS,
    Airport,
    OrgProfile,
    distance_km,
    fleet_types,
    generated_org,
)
from gateway.admin.seed_model import (
    AircraftPlan,
    Exceedance,
    FlightPlan,
    MaintenancePlan,
    OrgPlan,
    SeedSize,
)

SEED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://dbx.example/seed/v1")
WINDOW = timedelta(days=120)
ANNUAL_HOURS = {"turbofan": 2800.0, "turboprop": 2200.0, "piston": 600.0, "electric": 80.0}
COMPONENTS = {
    "turbofan": (
        "Engine 1 fan blades",
        "Engine 2 borescope",
        "Main landing gear tyre",
        "APU starter generator",
        "Brake assembly",
        "Pitot probe",
        "Weather radar",
    ),
    "turboprop": (
        "Propeller 1 de-icing boot",
        "Engine 2 fuel nozzle",
        "Main landing gear tyre",
        "Brake assembly",
        "Pitot probe",
    ),
    "piston": (
        "Spark plugs",
        "Left magneto",
        "Oil filter",
        "Brake pads",
        "Vacuum pump",
        "Alternator",
        "Exhaust gasket",
    ),
    "electric": (
        "Propeller set",
        "Battery pack",
        "Motor 2",
        "Gimbal",
        "RTK module",
        "Airframe arm lock",
    ),
}


def org_profiles(n: int) -> list[OrgProfile]:
    return [DEMO_ORGS[i] if i < len(DEMO_ORGS) else generated_org(i) for i in range(n)]


def org_id(slug: str) -> uuid.UUID:
    return uuid.uuid5(SEED_NAMESPACE, f"org/{slug}")


def plan_org(profile: OrgProfile, size: SeedSize, anchor: datetime) -> OrgPlan:
    rng = random.Random(f"dbx-seed/{profile.slug}")
    start = anchor - WINDOW
    org = OrgPlan(org_id(profile.slug), profile, start - timedelta(days=rng.randint(200, 900)))
    used: set[str] = set()
    for i in range(size.aircraft):
        org.aircraft.append(_plan_aircraft(org, i, size, anchor, rng, used))
    return org


def _registration(prefix: str, rng: random.Random, used: set[str]) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while True:
        if prefix == "N":
            reg = f"N{rng.randint(100, 9999)}{rng.choice(letters)}{rng.choice(letters)}"
        elif prefix.startswith("D-UAV"):
            reg = f"D-UAV{rng.randint(1, 99999):05d}"
        else:
            reg = prefix + "".join(rng.choice(letters) for _ in range(4))
        if reg not in used:
            used.add(reg)
            return reg


def _plan_aircraft(
    org: OrgPlan, i: int, size: SeedSize, anchor: datetime, rng: random.Random, used: set[str]
) -> AircraftPlan:
    p = org.profile
    types = fleet_types(p.kind)
    t = types[i % len(types)]
    built_year = rng.randint(*t.built)
    built = date(built_year, rng.randint(1, 12), rng.randint(1, 28))
    region_pref = {"A320neo": "eu", "ATR 72-600": "eu", "E175": "us"}.get(t.model)
    bases = [b for b in p.bases if AIRPORTS[b].region == region_pref] or list(p.bases)
    base = AIRPORTS[bases[i % len(bases)]]
    years = max((anchor.date() - built).days / 365.25 - WINDOW.days / 365.25, 0.1)
    hours_before = round(years * ANNUAL_HOURS[t.engine_type] * rng.uniform(0.6, 1.0), 2)
    status = "active"
    if size.aircraft >= 4 and i == size.aircraft - 1:
        status = "retired"
    elif i % 5 == 2:
        status = "maintenance"
    ac = AircraftPlan(
        id=uuid.uuid5(SEED_NAMESPACE, f"aircraft/{p.slug}/{i}"),
        type=t,
        registration=_registration(p.registration_prefix, rng, used),
        serial_number=f"{t.serial_prefix}{rng.randint(1000, 99999)}",
        status=status,
        manufactured_on=built,
        base=base,
        hours_before=hours_before,
        created_at=org.created_at + timedelta(days=rng.randint(0, 150)),
    )
    _plan_flights(org, ac, i, size, anchor, rng)
    _plan_maintenance(org, ac, anchor, rng)
    return ac


def _next_leg(
    p: OrgProfile, ac: AircraftPlan, here: Airport, rng: random.Random
) -> tuple[Airport, str, float]:
    """Destination, pattern and planned duration (s) of the next flight from here."""
    t = ac.type
    if p.kind == "drone_operator":
        return here, "survey", rng.uniform(900, 2400 if t.model != "eBee X" else 3300)
    if p.kind == "flight_school":
        others = [a for a in AIRPORTS.values() if a.region == here.region and a is not here]
        if rng.random() < 0.25 and others:
            dest = rng.choice(others)
            return dest, "route", distance_km(here, dest) * 1000 / t.tas_ms + 900
        return here, "circuit", rng.uniform(2700, 6000)
    if here is not ac.base and rng.random() < 0.6:
        dest = ac.base
    else:
        region = here.region
        options = [
            a
            for a in AIRPORTS.values()
            if a.region == region
            and a is not here
            and 150 <= distance_km(here, a) <= t.max_range_km * 0.8
        ]
        dest = rng.choice(options) if options else ac.base
    if dest is here:
        return here, "circuit", rng.uniform(2700, 4000)
    return dest, "route", distance_km(here, dest) * 1000 / t.tas_ms + 1500


def _plan_flights(
    org: OrgPlan, ac: AircraftPlan, i: int, size: SeedSize, anchor: datetime, rng: random.Random
) -> None:
    p = org.profile
    n = size.flights
    window = WINDOW * 0.4 if ac.status == "retired" else WINDOW
    start = anchor - WINDOW
    slot = window / max(n, 1)
    here = ac.base
    free_from = start
    for k in range(n):
        dest, pattern, dur = _next_leg(p, ac, here, rng)
        last = k == n - 1
        ending = "completed"
        if last and ac.status == "active":
            ending = ("in_flight", "scheduled", "completed", "completed")[i % 4]
        if ending == "in_flight":
            departed = anchor - timedelta(seconds=dur * rng.uniform(0.2, 0.8))
        elif ending == "scheduled":
            departed = anchor + timedelta(hours=rng.uniform(1, 36))
        else:
            slack = max((slot.total_seconds() - dur) * 0.8, 0)
            departed = start + slot * k + timedelta(seconds=rng.uniform(0, slack))
            if departed + timedelta(seconds=dur) > anchor - timedelta(minutes=30):
                departed = anchor - timedelta(seconds=dur + 1800)
        departed = max(departed, free_from + timedelta(minutes=45))
        departed = departed.replace(microsecond=0)
        status = ending
        if status != "scheduled" and departed >= anchor - timedelta(minutes=2):
            status = "scheduled"  # pushed past the anchor by the previous flight
        elif status == "completed" and departed + timedelta(seconds=dur) > anchor:
            status = "in_flight"
        elif status == "completed" and not last and rng.random() < 0.03:
            status = "cancelled"
        f = FlightPlan(
            id=uuid.uuid5(SEED_NAMESPACE, f"flight/{p.slug}/{i}/{k}"),
            org_id=org.id,
            aircraft_id=ac.id,
            type=ac.type,
            flight_number=f"{p.flight_prefix}{rng.randint(10, 9999)}",
            origin=here,
            destination=dest,
            departed_at=departed,
            duration_s=round(dur),
            status=status,
            pattern=pattern,
        )
        if status == "completed":
            f.arrived_at = departed + timedelta(seconds=f.duration_s)
            f.points, f.span_s = size.points, f.duration_s
        elif status == "in_flight":
            f.span_s = round((anchor - departed).total_seconds())
            f.points = min(size.points, max(2, round(size.points * f.span_s / f.duration_s)))
        _plan_exceedances(f, rng)
        ac.flights.append(f)
        if status != "cancelled":
            here = dest
        free_from = f.arrived_at or departed
    if ac.status == "retired":
        last_arrival = max((f.arrived_at or f.departed_at for f in ac.flights), default=start)
        ac.retired_at = last_arrival + timedelta(days=2)


def _plan_exceedances(f: FlightPlan, rng: random.Random) -> None:
    t = f.type
    if f.points < 8:
        return
    if rng.random() < 0.15:
        j = rng.randint(f.points // 4, f.points // 2)
        peak = round(t.max_engine_temp_c + rng.uniform(15, 60), 1)
        for d in range(min(3, f.points - j)):
            f.exceedances.append(
                Exceedance("engine_temp", j + d, round(peak - 6 * d, 1), t.max_engine_temp_c)
            )
    if rng.random() < 0.08:
        j = rng.randint(f.points // 2, (3 * f.points) // 4)
        f.exceedances.append(
            Exceedance(
                "overspeed",
                j,
                round(min(t.max_speed_ms + rng.uniform(2, 8), 199.5), 1),
                t.max_speed_ms,
            )
        )


def _plan_maintenance(org: OrgPlan, ac: AircraftPlan, anchor: datetime, rng: random.Random) -> None:
    t = ac.type
    start = anchor - WINDOW
    interval = t.inspection_interval_h
    per_day = ANNUAL_HOURS[t.engine_type] / 365.25
    # hours at the end of each completed flight, for placing hour-based events
    marks: list[tuple[float, datetime]] = []
    hours = ac.hours_before
    for f in ac.flights:
        if f.status == "completed" and f.arrived_at is not None:
            hours += f.duration_s / 3600.0
            marks.append((hours, f.arrived_at))

    def when(h: float) -> datetime:
        if h <= ac.hours_before or not marks:
            return start - timedelta(days=max(ac.hours_before - h, 0) / per_day)
        at = next((at for mark, at in marks if mark >= h), marks[-1][1])
        return min(at + timedelta(hours=3), anchor - timedelta(hours=1))

    total = ac.total_flight_hours
    last = total - interval * rng.uniform(0.05, 1.12)  # some aircraft are overdue
    seq = 0
    for back in (2, 1, 0):
        h = last - back * interval
        if h <= 0:
            continue
        ac.maintenance.append(
            MaintenancePlan(
                uuid.uuid5(SEED_NAMESPACE, f"maintenance/{ac.id}/{seq}"),
                f"{interval:g} h inspection",
                "inspection",
                when(h),
                rng.choice(
                    (
                        "No findings.",
                        "Minor corrosion treated.",
                        "Placarded item cleared.",
                        "Wear within limits; next check as scheduled.",
                    )
                ),
                round(h, 2),
            )
        )
        seq += 1
    components = COMPONENTS[t.engine_type]
    for _ in range(rng.randint(0, 2)):
        h = rng.uniform(max(ac.hours_before - 200, 0), total)
        kind = rng.choice(("repair", "replacement"))
        comp = rng.choice(components)
        ac.maintenance.append(
            MaintenancePlan(
                uuid.uuid5(SEED_NAMESPACE, f"maintenance/{ac.id}/{seq}"),
                comp,
                kind,
                when(h),
                f"{comp}: {'replaced' if kind == 'replacement' else 'repaired'}, tested OK.",
                round(h, 2),
            )
        )
        seq += 1
    if ac.status == "maintenance":
        comp = rng.choice(components)
        ac.maintenance.append(
            MaintenancePlan(
                uuid.uuid5(SEED_NAMESPACE, f"maintenance/{ac.id}/{seq}"),
                comp,
                "repair",
                anchor - timedelta(hours=rng.uniform(2, 30)),
                f"In progress: {comp.lower()} defect found on walk-round; aircraft grounded.",
                total,
            )
        )
    ac.maintenance.sort(key=lambda m: m.performed_at)
