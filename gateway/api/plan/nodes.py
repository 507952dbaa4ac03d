"""The plan tree: what ``compile`` makes of a selection and ``emit`` writes
as SQL. A ``Selection`` is (response key, node) pairs in response order.

Must not: write SQL or run anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.data.planned_values import Kind

Selection = list[tuple[str, "Node"]]


@dataclass(frozen=True)
class Typename:
    name: str


@dataclass(frozen=True)
class Column:
    """A column of the current row: ``text`` is its JSON text template."""

    text: str


@dataclass(frozen=True)
class Param:
    """A request value of the enclosing analytic (``Bound.values``)."""

    name: str


@dataclass(frozen=True)
class RowObject:
    """An object over the current row (an edge's node)."""

    selection: Selection


@dataclass(frozen=True)
class ById:
    """``Query.aircraft(id)`` / ``Query.flight(id)``: ``slot`` indexes ``Plan.args``."""

    kind: Kind
    slot: int
    selection: Selection


@dataclass(frozen=True)
class Related:
    """The related row of the current row (``Flight.aircraft``, ``Aircraft.latestFlight``)."""

    source: Callable[[str, str], str]
    selection: Selection


@dataclass(frozen=True)
class Cursor:
    pass


@dataclass(frozen=True)
class HasNextPage:
    pass


@dataclass(frozen=True)
class EndCursor:
    pass


@dataclass(frozen=True)
class TotalCount:
    pass


@dataclass(frozen=True)
class Edges:
    selection: Selection  # Cursor, RowObject (node), Typename


@dataclass(frozen=True)
class PageInfo:
    selection: Selection  # HasNextPage, EndCursor, Typename


@dataclass(frozen=True)
class Connection:
    """``fleet`` / ``flights`` (root) or ``Aircraft.flights`` (nested)."""

    kind: Kind
    slot: int
    nested: bool
    selection: Selection  # Edges, PageInfo, TotalCount, Typename


@dataclass(frozen=True)
class Analytic:
    """An ``Analytics`` field: the data layer's statement, wrapped as a list
    of objects (``listed``) or as its one row's object."""

    slot: int
    listed: bool
    selection: Selection  # Column, Param, Typename


@dataclass(frozen=True)
class AnalyticsRoot:
    """``Query.analytics``: served with the ``analytics`` intent."""

    selection: Selection  # Analytic, Typename


Node = (
    Typename
    | Column
    | Param
    | RowObject
    | ById
    | Related
    | Cursor
    | HasNextPage
    | EndCursor
    | TotalCount
    | Edges
    | PageInfo
    | Connection
    | Analytic
    | AnalyticsRoot
)
