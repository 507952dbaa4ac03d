"""Shared SQL building blocks for ``gateway.data``: positional parameters and
keyset (seek) pagination predicates.

Values always travel as bind parameters; only fixed column names chosen from
literals in this package ever become SQL text.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

import json
from typing import Any


class Params:
    """Collects bind values and hands out ``$n`` placeholders in order."""

    __slots__ = ("values",)

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def where(conditions: list[str]) -> str:
    return " and ".join(conditions) if conditions else "true"


def seek_after(columns: tuple[str, str], placeholders: tuple[str, str], descending: bool) -> str:
    """Row-value comparison that continues a keyset page after a cursor key.
    Both columns sort the same way, so one row comparison uses the index."""
    op = "<" if descending else ">"
    return f"({columns[0]}, {columns[1]}) {op} ({placeholders[0]}, {placeholders[1]})"


def json_text(value: Any) -> str:
    """A JSON document as text for a ``$n::jsonb`` parameter."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_value(text: str | None) -> Any:
    return None if text is None else json.loads(text)
