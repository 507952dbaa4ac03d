"""Field plans: what a GraphQL field declares, next to its Strawberry
definition (``metadata`` under ``PLAN``), so that the planner can answer it
in SQL. The compiler (``compile``) finds them by walking the schema from
the operation's root type; a field that declares no plan is for the
resolvers.

A column field declares one thing, ``column(name)``: the resolver path
builds its objects from the same declarations (``row_reader``), and the
planned path writes the column as JSON text with the codec its GraphQL type
implies (or the one given).

Must not: write SQL text (``gateway.data.planned*``), run anything, or
import the schema's types (they import this).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import strawberry
from graphql import GraphQLEnumType, GraphQLField, GraphQLNonNull, GraphQLScalarType
from strawberry.scalars import JSON
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition

from gateway.data.fragments import Params, json_value
from gateway.data.planned_sources import ParentLink, Source
from gateway.data.planned_values import Codec, Kind

PLAN = "dbx.plan"  # the ``metadata`` key of a field's plan
DEFINITION = "strawberry-definition"  # Strawberry's back reference on a GraphQLField


@dataclass(frozen=True)
class ColumnPlan:
    """A scalar read from ``column`` of the object's row (an expression over
    the row, e.g. ``pct[1]``); ``codec`` None: implied by the GraphQL type."""

    column: str
    codec: Codec | None = None


@dataclass(frozen=True)
class ParamPlan:
    """A value of the request that the analytic's binding writes
    (``Bound.values[name]``), e.g. the metric asked for."""

    name: str


@dataclass(frozen=True)
class RowPlan:
    """``Query.aircraft(id)`` / ``Query.flight(id)``: one row of ``kind`` by id."""

    kind: Kind


@dataclass(frozen=True)
class PagePlan:
    """A Relay connection over rows of ``kind``: ``cursor`` parses ``after`` as
    the resolver does; a root connection converts its ``filter`` argument
    with the resolver's ``filter``, a nested one hangs off its parent row."""

    kind: Kind
    cursor: Callable[[str | None], tuple[Any, Any] | None]
    filter: Callable[[Any], Any] | None = None
    parent: ParentLink | None = None


@dataclass(frozen=True)
class RelatedPlan:
    """The one related row (or null) of the parent row: ``source(alias,
    parent alias)`` is its FROM/WHERE."""

    source: Callable[[str, str], str]


Part = Literal["edges", "pageInfo", "totalCount", "cursor", "node", "hasNextPage", "endCursor"]


@dataclass(frozen=True)
class PartPlan:
    """A part of a Relay connection, its edges or its page info."""

    part: Part


@dataclass(frozen=True)
class AnalyticsPlan:
    """``Query.analytics``: its planned fields run with the ``analytics`` intent."""


@dataclass(frozen=True)
class Bound:
    """One argument-bearing field's placeholders, conditions and source,
    bound per request: what the statement text depends on (hashable)."""

    id_param: str = ""
    cond: tuple[str, ...] = ()
    count_cond: tuple[str, ...] = ()
    size_param: str = ""
    limit_param: str = ""
    source: Source | None = None
    # (``ParamPlan`` name, its JSON text expression)
    values: tuple[tuple[str, str], ...] = ()
    # a condition on the single row of ``source`` (every bound value must
    # appear in the text, selected or not)
    row_cond: str = "true"


# (values, the request's org, the field's arguments as the resolver gets them)
AnalyticBinder = Callable[[Params, uuid.UUID, dict[str, Any]], Bound]


@dataclass(frozen=True)
class AnalyticPlan:
    """An ``Analytics`` field: ``bind`` makes the resolver's checks and
    returns the data layer's statement; a list field lists its rows, an
    object field reads its one row."""

    bind: AnalyticBinder


FieldPlan = (
    ColumnPlan
    | ParamPlan
    | RowPlan
    | PagePlan
    | RelatedPlan
    | PartPlan
    | AnalyticsPlan
    | AnalyticPlan
)


def plan(p: FieldPlan) -> dict[str, FieldPlan]:
    """``metadata`` of a Strawberry field planned as ``p``."""
    return {PLAN: p}


def column(name: str, codec: Codec | None = None, *, description: str | None = None) -> Any:
    """A Strawberry field read from column ``name`` on both paths."""
    return strawberry.field(description=description, metadata=plan(ColumnPlan(name, codec)))


def param(name: str, *, description: str | None = None) -> Any:
    return strawberry.field(description=description, metadata=plan(ParamPlan(name)))


def part(name: Part) -> Any:
    return strawberry.field(metadata=plan(PartPlan(name)))


def plan_of(field: GraphQLField) -> FieldPlan | None:
    """The plan a schema field declares, or None."""
    definition = field.extensions.get(DEFINITION)
    metadata: Mapping[str, Any] | None = getattr(definition, "metadata", None)
    return None if not metadata else metadata.get(PLAN)


# (GraphQL name, Python name, the Strawberry type that converts its value, or
# None for a scalar or enum, which graphql-core's coercion leaves as Strawberry
# would pass it)
Argument = tuple[str, str, Any]


def python_arguments(field: GraphQLField) -> tuple[Argument, ...]:
    """How a field's coerced arguments become its resolver's (Strawberry's
    ``convert_arguments``, worked out once per field)."""
    out: list[Argument] = []
    for name, arg in field.args.items():
        t = arg.type.of_type if isinstance(arg.type, GraphQLNonNull) else arg.type
        strawberry_arg = arg.extensions[DEFINITION]
        leaf = isinstance(t, GraphQLScalarType | GraphQLEnumType)
        out.append((name, strawberry_arg.python_name, None if leaf else strawberry_arg.type))
    return tuple(out)


def _python(t: Any) -> Callable[[Any], Any]:
    """A column's value as the field's Python type wants it."""
    if isinstance(t, StrawberryOptional):
        inner = _python(t.of_type)
        return lambda v: None if v is None else inner(v)
    if t is strawberry.ID:
        return lambda v: strawberry.ID(str(v))
    if isinstance(t, StrawberryEnumDefinition):
        return t.wrapped_cls
    if t is float:
        return float
    if t is JSON:
        return json_value  # the data layer reads jsonb as text
    return lambda v: v


def row_reader(cls: type) -> Callable[[Any], dict[str, Any]]:
    """The keyword arguments of ``cls``'s fields declared with ``column``,
    from a data-layer row (built on first use: types refer to each other)."""
    readers: list[tuple[str, str, Callable[[Any], Any]]] = []

    def read(row: Any) -> dict[str, Any]:
        if not readers:
            for f in get_object_definition(cls, strict=True).fields:
                metadata: Mapping[str, Any] = f.metadata or {}
                p = metadata.get(PLAN)
                if isinstance(p, ColumnPlan):
                    readers.append((f.python_name, p.column, _python(f.type)))
        return {name: conv(row[col]) for name, col, conv in readers}

    return read
