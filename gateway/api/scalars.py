"""Scalar overrides for the schema: ``DateTime`` parses the common RFC 3339
shape with ``datetime.fromisoformat`` (well under a microsecond) and leaves
everything else to Strawberry's own parser (``dateutil``'s ``isoparse``,
some 15 µs a value), so the accepted inputs, the values and the error
messages stay exactly Strawberry's. A batch of 1000 telemetry points has
1000 of them. Values outside years 0002-9998 (UTC; naive values read as
UTC) are refused as the client's error: near year 1 or 9999 a conversion
to UTC, the driver's encoding or a window's arithmetic would overflow.

Must not: write SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from operator import methodcaller

import dateutil.parser
from strawberry.types.scalar import ScalarDefinition

# ASCII digits only: a date, "T", a time with at most microseconds, an optional Z or ±hh:mm
_PLAIN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
# Python's datetime range, less a year each side for offsets and windows
EARLIEST = dt.datetime(2, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # exclusive
OUT_OF_RANGE = "A DateTime must lie between 0002-01-01 and 9998-12-31 (UTC)"


def in_range(value: dt.datetime) -> dt.datetime:
    """``value``, or ValueError when it lies outside [EARLIEST, LATEST)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(OUT_OF_RANGE)
    return value


def parse_datetime(value: str) -> dt.datetime:
    """Strawberry's ``DateTime`` parser, faster for the plain shape: both
    parsers give the same instant and offset there; whatever
    ``fromisoformat`` refuses (hour 24, an offset of 24 h) goes to
    ``isoparse``, which then decides. Then the range check."""
    parsed: dt.datetime | None
    try:
        parsed = dt.datetime.fromisoformat(value) if _PLAIN.fullmatch(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        parsed = dateutil.parser.isoparse(value)
    return in_range(parsed)


def _override() -> dict[object, ScalarDefinition]:
    """``{datetime: the faster DateTime}``, built on Strawberry's own
    definition and error wrapper; should a Strawberry release move those,
    the schema keeps Strawberry's ``DateTime`` (slower, same answers)
    rather than fail to start. ``tests/unit/test_scalars.py`` imports them
    directly, so such a release shows up there."""
    try:
        from strawberry.schema.types.base_scalars import DateTimeDefinition, wrap_parser
    except ImportError:
        return {}
    return {
        dt.datetime: ScalarDefinition(
            name=DateTimeDefinition.name,
            description=DateTimeDefinition.description,
            specified_by_url=DateTimeDefinition.specified_by_url,
            serialize=methodcaller("isoformat"),
            parse_value=wrap_parser(parse_datetime, "DateTime"),
            parse_literal=None,
            origin=dt.datetime,
        )
    }


SCALAR_OVERRIDES = _override()
