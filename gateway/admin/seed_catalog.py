"""Reference data for ``dbx-gateway seed``: real aircraft types with plausible
specifications, real airports (ICAO code, position, elevation), and the demo
organizations. Plain constants and pure look-ups.

Speeds in ``specs`` are indicated airspeeds in m/s (``cruise_speed_ms``; the
never-exceed or maximum operating speed as ``max_speed_ms``), which is what the
telemetry's ``airspeed_ms`` records; ``tas_ms`` is the true airspeed used only
to derive block times. ``max_engine_temp_c`` is the redline of the temperature
the type reports (EGT/ITT for turbines, CHT for pistons, motor temperature for
electric drones).

Must not: touch the database, or hold mutable state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AircraftType:
    manufacturer: str
    model: str
    engine_type: str  # turbofan | turboprop | piston | electric
    engine_model: str
    engines: int
    mtow_kg: float
    seats: int
    service_ceiling_m: float
    cruise_alt_m: tuple[float, float]  # typical cruise altitude range (MSL)
    cruise_speed_ms: float  # indicated
    max_speed_ms: float  # VMO / VNE, indicated
    tas_ms: float  # true airspeed in cruise, for block times
    climb_rate_ms: float
    descent_rate_ms: float
    rotate_speed_ms: float
    approach_speed_ms: float
    max_engine_temp_c: float
    engine_temp_c: tuple[float, float, float]  # climb, cruise, descent
    fuel_flow_kg_h: tuple[float, float, float]  # climb, cruise, descent
    inspection_interval_h: float
    max_range_km: float
    serial_prefix: str
    built: tuple[int, int]  # plausible manufacturing years

    def specs(self) -> dict[str, Any]:
        return {
            "engine_type": self.engine_type,
            "engine_model": self.engine_model,
            "engines": self.engines,
            "mtow_kg": self.mtow_kg,
            "seats": self.seats,
            "service_ceiling_m": self.service_ceiling_m,
            "cruise_speed_ms": self.cruise_speed_ms,
            "max_speed_ms": self.max_speed_ms,
            "max_engine_temp_c": self.max_engine_temp_c,
            "inspection_interval_h": self.inspection_interval_h,
            "max_range_km": self.max_range_km,
        }


# fmt: off
# manufacturer, model, engine type and model, engines, MTOW kg, seats, ceiling m,
# cruise altitude range m, cruise IAS, max IAS, cruise TAS, climb and descent
# rates (m/s), rotate and approach speeds, engine redline °C, engine temperature
# and fuel flow (kg/h) in climb/cruise/descent, inspection interval h, range km,
# serial prefix, build years
AIRLINER_TYPES: tuple[AircraftType, ...] = (
    AircraftType("Airbus", "A320neo", "turbofan", "CFM LEAP-1A26", 2, 79000, 180, 11900,
                 (10700, 11300), 140, 180, 230, 11, 9, 75, 70, 1060, (960, 830, 640),
                 (5200, 2300, 900), 750, 6300, "MSN", (2016, 2024)),
    AircraftType("Boeing", "737-800", "turbofan", "CFM56-7B26", 2, 79016, 189, 12500,
                 (10400, 11300), 145, 175, 228, 10, 9, 78, 72, 950, (880, 760, 600),
                 (5600, 2500, 950), 600, 5400, "LN", (2005, 2019)),
    AircraftType("Embraer", "E175", "turbofan", "GE CF34-8E5", 2, 38790, 76, 12500,
                 (10000, 11000), 135, 165, 220, 12, 9, 70, 65, 990, (900, 780, 620),
                 (2900, 1400, 600), 600, 3700, "17000", (2008, 2022)),
    AircraftType("ATR", "ATR 72-600", "turboprop", "PW127M", 2, 23000, 70, 7620,
                 (5200, 7000), 108, 129, 141, 7, 6, 55, 58, 800, (765, 700, 610),
                 (1200, 720, 350), 500, 1500, "ATR", (2010, 2023)),
)

TRAINER_TYPES: tuple[AircraftType, ...] = (
    AircraftType("Cessna", "172S Skyhawk", "piston", "Lycoming IO-360-L2A", 1, 1157, 4, 4100,
                 (900, 1700), 55, 84, 62, 3.5, 3, 28, 33, 260, (220, 195, 165),
                 (38, 28, 12), 100, 1185, "172S", (1999, 2021)),
    AircraftType("Piper", "PA-28-181 Archer", "piston", "Lycoming O-360-A4M", 1, 1157, 4, 4023,
                 (900, 1500), 54, 79, 64, 3.4, 3, 28, 34, 260, (225, 200, 170),
                 (36, 27, 11), 100, 1140, "2843", (1995, 2019)),
    AircraftType("Diamond", "DA40 NG", "piston", "Austro Engine AE300", 1, 1310, 4, 5000,
                 (900, 1800), 60, 91, 68, 3.6, 3, 30, 36, 240, (205, 185, 160),
                 (28, 20, 9), 100, 1400, "40.N", (2010, 2023)),
)

DRONE_TYPES: tuple[AircraftType, ...] = (
    AircraftType("DJI", "Matrice 300 RTK", "electric", "4x DJI 6009 BLDC", 4, 9.0, 0, 5000,
                 (80, 120), 15, 23, 15, 5, 3, 0, 2, 80, (58, 50, 45),
                 (0, 0, 0), 50, 15, "1ZNBJ", (2020, 2023)),
    AircraftType("DJI", "Matrice 350 RTK", "electric", "4x DJI 6009 BLDC", 4, 9.2, 0, 7000,
                 (80, 120), 15, 23, 15, 6, 4, 0, 2, 80, (57, 49, 44),
                 (0, 0, 0), 50, 18, "1ZNDH", (2023, 2025)),
    AircraftType("senseFly", "eBee X", "electric", "1x brushless pusher", 1, 1.6, 0, 4000,
                 (90, 120), 14, 30, 14, 4, 3, 11, 12, 90, (55, 48, 42),
                 (0, 0, 0), 50, 40, "EBX", (2019, 2024)),
)
# fmt: on


@dataclass(frozen=True)
class Airport:
    icao: str
    name: str
    lat: float
    lon: float
    elevation_m: float
    region: str  # eu | us


# fmt: off
AIRPORTS: dict[str, Airport] = {
    a.icao: a
    for a in (
        Airport("EGLL", "London Heathrow", 51.4700, -0.4543, 25, "eu"),
        Airport("LFPG", "Paris Charles de Gaulle", 49.0097, 2.5479, 119, "eu"),
        Airport("EDDF", "Frankfurt", 50.0379, 8.5622, 111, "eu"),
        Airport("EHAM", "Amsterdam Schiphol", 52.3105, 4.7683, -3, "eu"),
        Airport("LEMD", "Madrid Barajas", 40.4983, -3.5676, 610, "eu"),
        Airport("LIRF", "Rome Fiumicino", 41.8003, 12.2389, 5, "eu"),
        Airport("EDDM", "Munich", 48.3538, 11.7861, 453, "eu"),
        Airport("LSZH", "Zurich", 47.4582, 8.5555, 432, "eu"),
        Airport("EIDW", "Dublin", 53.4264, -6.2499, 74, "eu"),
        Airport("EKCH", "Copenhagen", 55.6180, 12.6560, 5, "eu"),
        Airport("LOWW", "Vienna", 48.1103, 16.5697, 183, "eu"),
        Airport("LEBL", "Barcelona", 41.2974, 2.0833, 4, "eu"),
        Airport("EGCC", "Manchester", 53.3537, -2.2750, 78, "eu"),
        Airport("LPPT", "Lisbon", 38.7742, -9.1342, 114, "eu"),
        Airport("KJFK", "New York JFK", 40.6413, -73.7781, 4, "us"),
        Airport("KSFO", "San Francisco", 37.6213, -122.3790, 4, "us"),
        Airport("KBOS", "Boston Logan", 42.3656, -71.0096, 6, "us"),
        Airport("KORD", "Chicago O'Hare", 41.9742, -87.9073, 204, "us"),
        Airport("KDCA", "Washington National", 38.8512, -77.0402, 5, "us"),
        Airport("KSEA", "Seattle-Tacoma", 47.4502, -122.3088, 132, "us"),
        Airport("KLAX", "Los Angeles", 33.9416, -118.4085, 38, "us"),
        Airport("KDEN", "Denver", 39.8561, -104.6737, 1656, "us"),
        # training aerodromes (San Francisco Bay Area)
        Airport("KPAO", "Palo Alto", 37.4611, -122.1150, 2, "bay"),
        Airport("KHWD", "Hayward Executive", 37.6592, -122.1217, 16, "bay"),
        Airport("KSQL", "San Carlos", 37.5119, -122.2495, 2, "bay"),
        Airport("KLVK", "Livermore", 37.6934, -121.8204, 122, "bay"),
        # drone operations (Bavaria)
        Airport("EDMO", "Oberpfaffenhofen", 48.0814, 11.2831, 593, "drone"),
        Airport("EDJA", "Memmingen", 47.9888, 10.2395, 634, "drone"),
        Airport("EDMA", "Augsburg", 48.4252, 10.9317, 462, "drone"),
    )
}
# fmt: on


@dataclass(frozen=True)
class OrgProfile:
    slug: str
    name: str
    kind: str
    registration_prefix: str  # "G-" + four letters; "N" + digits and letters; "D-UAV" + digits
    flight_prefix: str  # two characters leading every flight number
    bases: tuple[str, ...]  # ICAO codes the fleet flies from
    retention_days: int


DEMO_ORGS: tuple[OrgProfile, ...] = (
    OrgProfile(
        "skyline-airways",
        "Skyline Airways",
        "airline",
        "G-",
        "SK",
        ("EGLL", "EGCC", "EIDW", "KJFK", "KBOS"),
        730,
    ),
    OrgProfile(
        "blue-horizon-flight-school",
        "Blue Horizon Flight School",
        "flight_school",
        "N",
        "BH",
        ("KPAO", "KHWD", "KSQL"),
        365,
    ),
    OrgProfile(
        "aerodrone-ops",
        "AeroDrone Ops",
        "drone_operator",
        "D-UAV",
        "AD",
        ("EDMO", "EDJA", "EDMA"),
        180,
    ),
)

_NAME_FIRST = (
    "Northwind",
    "Coastal",
    "Summit",
    "Polar",
    "Meridian",
    "Harbor",
    "Falcon",
    "Aurora",
    "Cedar",
    "Granite",
    "Silverline",
    "Redtail",
    "Evergreen",
    "Zenith",
    "Lakeside",
)
_NAME_LAST = {
    "airline": ("Airways", "Air", "Airlines", "Regional"),
    "flight_school": ("Flight Academy", "Aviation School", "Flight Training"),
    "drone_operator": ("Drone Services", "UAV Surveys", "Aerial Robotics"),
    "charter": ("Charter", "Executive Jets", "Air Taxi"),
}
_KINDS = ("airline", "flight_school", "drone_operator", "charter")


def generated_org(index: int) -> OrgProfile:
    """The index-th organization beyond the three demo ones (index >= 3)."""
    kind = _KINDS[index % len(_KINDS)]
    first = _NAME_FIRST[(index * 7) % len(_NAME_FIRST)]
    lasts = _NAME_LAST[kind]
    last = lasts[(index // len(_KINDS)) % len(lasts)]
    name = f"{first} {last}"
    slug = "-".join(name.lower().split()) + f"-{index}"
    letters = "".join(w[0] for w in name.split())[:2].upper()
    code = (letters + "XX")[:2] if letters.isalpha() else "ZZ"
    if kind == "flight_school":
        return OrgProfile(slug, name, kind, "N", code, DEMO_ORGS[1].bases, 365)
    if kind == "drone_operator":
        return OrgProfile(slug, name, kind, "D-UAV", code, DEMO_ORGS[2].bases, 180)
    bases = ("EDDF", "LFPG", "EHAM") if index % 2 else ("KORD", "KDEN", "KSEA")
    return OrgProfile(
        slug,
        name,
        "airline" if kind == "airline" else "charter",
        "G-" if index % 2 else "N",
        code,
        bases,
        730,
    )


def fleet_types(kind: str) -> tuple[AircraftType, ...]:
    if kind == "flight_school":
        return TRAINER_TYPES
    if kind == "drone_operator":
        return DRONE_TYPES
    return AIRLINER_TYPES


def distance_km(a: Airport, b: Airport) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def bearing_deg(a: Airport, b: Airport) -> float:
    """Initial great-circle bearing from a to b, in [0, 360)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0
