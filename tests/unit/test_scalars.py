"""The ``DateTime`` override accepts, refuses and parses exactly like
Strawberry's own ``DateTime`` scalar: the same instant, the same offset,
the same ``isoformat()`` and the same error message, for the plain RFC 3339
shape it speeds up and for everything it hands on."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition

from gateway.api.scalars import SCALAR_OVERRIDES

DATETIME = SCALAR_OVERRIDES[dt.datetime]


def outcome(parse: object, text: str) -> tuple[str, object, object, str]:
    assert callable(parse)
    try:
        v = parse(text)
    except StrawberryInputCoercionError as exc:
        return ("error", None, None, str(exc))
    return ("value", v, v.utcoffset(), v.isoformat())


EDGES = [
    "2026-11-25T10:00:00Z",
    "2026-11-25T10:00:00+00:00",
    "2026-11-25T10:00:00-00:00",
    "2026-11-25T10:00:00.5+05:30",
    "2026-11-25T10:00:00.123456-09:00",
    "2026-11-25T10:00:00",
    "2026-11-25T23:59:59.999999Z",
    "2026-11-25T24:00:00Z",  # hour 24: isoparse takes it as the next midnight
    "2026-11-25T10:00:00+24:00",
    "2026-11-25T10:00:00+23:59",
    "2026-02-30T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2024-02-29T00:00:00Z",
    "2026-11-25T10:60:00Z",
    "2026-11-25T10:00:61Z",
    "2026-11-25",
    "2026-11-25T10:00",
    "2026-11-25T10",
    "2026-11-25 10:00:00Z",
    "20261125T100000Z",
    "2026-11-25T10:00:00.1234567Z",
    "2026-11-25T10:00:00z",
    "2026-11-25T10:00:00+0100",
    "2026-W48-3T10:00:00Z",
    "",
    "yesterday",
    "2026-11-25T10:00:00Z ",
    "٢٠٢٦-11-25T10:00:00Z",  # non-ASCII digits
]


@pytest.mark.parametrize("text", EDGES)
def test_edge_cases_match_strawberry(text: str) -> None:
    assert outcome(DATETIME.parse_value, text) == outcome(DateTimeDefinition.parse_value, text)


def test_generated_plain_timestamps_match_strawberry() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        frac = (
            ""
            if rng.random() < 0.3
            else "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))
        )
        tz = rng.choice(
            ["", "Z", f"{rng.choice('+-')}{rng.randint(0, 25):02}:{rng.randint(0, 59):02}"]
        )
        text = (
            f"{rng.randint(1, 9999):04}-{rng.randint(0, 13):02}-{rng.randint(0, 32):02}"
            f"T{rng.randint(0, 24):02}:{rng.randint(0, 60):02}:{rng.randint(0, 61):02}{frac}{tz}"
        )
        assert outcome(DATETIME.parse_value, text) == outcome(
            DateTimeDefinition.parse_value, text
        ), text


def test_non_strings_are_refused_with_strawberrys_message() -> None:
    for value in (1700000000, None, 1.5, ["2026-11-25T10:00:00Z"]):
        assert outcome(DATETIME.parse_value, value) == outcome(  # type: ignore[arg-type]
            DateTimeDefinition.parse_value,
            value,  # type: ignore[arg-type]
        )
