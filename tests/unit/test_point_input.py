"""``TelemetryPointInput`` is built by its own ``from_input`` hook (the
bulk path of ``ingestTelemetry``); it must give exactly what Strawberry's
generic conversion gives, for full and partial points."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition

from gateway.api.inputs import POINT_FIELDS, TelemetryPointInput
from gateway.api.schema import build_schema

T = dt.datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=dt.UTC)
FULL = {
    "recordedAt": T,
    "altitudeM": 10500.5,
    "airspeedMs": 231.0,
    "latitude": 50.03,
    "longitude": 8.57,
    "headingDeg": 271.5,
    "verticalSpeedMs": -2.5,
    "engineTempC": 612.0,
    "fuelFlowKgH": 2400.0,
}


def convert(value: dict[str, Any], *, generic: bool) -> Any:
    schema = build_schema()
    definition = get_object_definition(TelemetryPointInput, strict=True)
    hook = definition.from_input
    if generic:
        definition.from_input = None
    try:
        return convert_argument(
            value, TelemetryPointInput, schema.schema_converter.scalar_registry, schema.config
        )
    finally:
        definition.from_input = hook


@pytest.mark.parametrize(
    "value",
    [
        FULL,
        {"recordedAt": T},
        {"recordedAt": T, "altitudeM": None, "latitude": 0.0},
        {**FULL, "fuelFlowKgH": None},
    ],
    ids=["full", "time-only", "nulls-and-zero", "one-null"],
)
def test_the_hook_builds_what_the_generic_conversion_builds(value: dict[str, Any]) -> None:
    fast, generic = convert(value, generic=False), convert(value, generic=True)
    assert type(fast) is TelemetryPointInput
    assert fast == generic
    assert {p: getattr(fast, p) for _, p in POINT_FIELDS} == vars(generic)


def test_the_field_names_are_the_schemas() -> None:
    sdl = build_schema().as_str()
    block = sdl[sdl.index("input TelemetryPointInput {") :]
    block = block[: block.index("}")]
    assert [g for g, _ in POINT_FIELDS] == [
        line.strip().split(":")[0] for line in block.splitlines()[1:] if line.strip()
    ]
