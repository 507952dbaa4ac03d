"""Opaque Relay cursors and ids: parsing client-supplied values into typed
keys, or a ``BadUserInput`` error.

A cursor is base64url of a small versioned JSON document ``{"v": 1, "t":
kind, "k": key}``. It carries no org: a cursor taken from another
organization's page only positions a keyset scan over the caller's own rows.

Must not: write SQL.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any

from gateway.errors import BadUserInput

CURSOR_VERSION = 1
MAX_CURSOR_LEN = 512


def encode(kind: str, key: list[Any]) -> str:
    body = json.dumps({"v": CURSOR_VERSION, "t": kind, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> list[Any]:
    if len(cursor) > MAX_CURSOR_LEN:
        raise BadUserInput("Invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadUserInput("Invalid cursor") from None
    if (
        not isinstance(doc, dict)
        or doc.get("v") != CURSOR_VERSION
        or doc.get("t") != kind
        or not isinstance(doc.get("k"), list)
    ):
        raise BadUserInput("Invalid cursor")
    return list(doc["k"])


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise BadUserInput("Invalid cursor")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadUserInput("Invalid cursor") from None
    if t.tzinfo is None:
        raise BadUserInput("Invalid cursor")
    return t


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise BadUserInput("Invalid cursor")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadUserInput("Invalid cursor") from None


def aircraft_cursor(registration: str, aircraft_id: uuid.UUID) -> str:
    return encode("aircraft", [registration, str(aircraft_id)])


def parse_aircraft_cursor(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    key = _decode(cursor, "aircraft")
    if len(key) != 2 or not isinstance(key[0], str) or len(key[0]) > 64:
        raise BadUserInput("Invalid cursor")
    return key[0], _uuid(key[1])


def flight_cursor(departed_at: dt.datetime, flight_id: uuid.UUID) -> str:
    return encode("flight", [departed_at.isoformat(), str(flight_id)])


def parse_flight_cursor(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    key = _decode(cursor, "flight")
    if len(key) != 2:
        raise BadUserInput("Invalid cursor")
    return _time(key[0]), _uuid(key[1])


def telemetry_cursor(recorded_at: dt.datetime) -> str:
    return encode("telemetry", [recorded_at.isoformat()])


def parse_telemetry_cursor(cursor: str | None) -> dt.datetime | None:
    if cursor is None:
        return None
    key = _decode(cursor, "telemetry")
    if len(key) != 1:
        raise BadUserInput("Invalid cursor")
    return _time(key[0])


def parse_id(value: str, what: str = "id") -> uuid.UUID:
    """An object id (a UUID as text) or BAD_USER_INPUT."""
    try:
        if len(value) > 64:
            raise ValueError
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise BadUserInput(f"{what} is not a valid id") from None


def page_size(first: int | None, max_first: int, default: int = 50) -> int:
    n = default if first is None else first
    if n < 0 or n > max_first:
        raise BadUserInput(f"first must be between 0 and {max_first}")
    return n


def utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes from clients are taken as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
