"""Selection to plan tree: decides whether a validated operation lies
wholly inside the plannable subset and, if so, describes its response shape
as a tree of ``Node``s. Fields are collected and merged by response key in
document order, as graphql-core does, so the JSON keys come out in the same
order as the resolver path's.

``analytics { ... }`` is planned for its read fields (``fleetDailyStats``,
``fleetStats``, ``telemetryStats``, ``telemetrySeries``); such a plan holds no
other root data field, since it runs with the ``analytics`` intent.

Anything outside the subset (mutations, subscriptions, directives, unknown
or unplanned fields, objects of more than ``MAX_KEYS`` response keys) raises
``Decline`` and the resolver path answers instead.

Must not: write SQL or run anything; look at argument values (``bind``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)

from gateway.data.planned import (
    AIRCRAFT_FIELDS,
    ANALYTICS_FIELDS,
    ANALYTICS_TYPES,
    FLIGHT_FIELDS,
    AnalyticsKind,
    Kind,
)

MAX_KEYS = 50  # response keys per planned object: bounds the statement text


class Decline(Exception):
    """This operation (or these arguments) is for the resolver path."""


Selection = list[tuple[str, "Node"]]


@dataclass(frozen=True)
class Typename:
    name: str


@dataclass(frozen=True)
class Column:
    kind: Kind
    field: str


@dataclass(frozen=True)
class RowObject:
    """An Aircraft or Flight object over the current row."""

    kind: Kind
    selection: Selection


@dataclass(frozen=True)
class ById:
    """``Query.aircraft(id)`` / ``Query.flight(id)``: ``slot`` indexes ``Plan.args``."""

    kind: Kind
    slot: int
    selection: Selection


@dataclass(frozen=True)
class Related:
    """``Flight.aircraft`` (kind aircraft) or ``Aircraft.latestFlight`` (kind flight)."""

    kind: Kind
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
class Scalar:
    """A scalar of an analytics result object (``ANALYTICS_FIELDS``)."""

    field: str


@dataclass(frozen=True)
class Analytic:
    """``Analytics.fleetDailyStats``, ``fleetStats`` or ``telemetrySeries`` (lists), or
    ``Analytics.telemetryStats`` (one object): the data layer's statement,
    wrapped."""

    kind: AnalyticsKind
    slot: int
    selection: Selection  # Scalar, Typename


@dataclass(frozen=True)
class AnalyticsRoot:
    """``Query.analytics``: served with the ``analytics`` intent."""

    selection: Selection  # Analytic, Typename


Node = (
    Typename
    | Column
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
    | Scalar
    | Analytic
    | AnalyticsRoot
)

Intent = Literal["read", "analytics"]


@dataclass(frozen=True)
class ArgSpec:
    """A field whose arguments are bound per request."""

    name: str  # aircraft, flight, fleet, flights, Aircraft.flights, Analytics.<field>
    definition: GraphQLField
    node: FieldNode
    paged: bool = True  # edges or pageInfo selected: the page query runs
    counted: bool = True  # totalCount selected: the count query runs


@dataclass
class Plan:
    operation: OperationDefinitionNode
    root: Selection
    args: list[ArgSpec]
    # "analytics": the root holds only ``analytics`` (and ``__typename``) and
    # runs like the resolvers' ``DbSession.analytics`` (replicas, its timeout)
    intent: Intent = "read"
    sql_by_shape: dict[tuple[Any, ...], str] = field(default_factory=dict)


def select_operation(doc: DocumentNode, name: str | None) -> OperationDefinitionNode:
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(ops) != 1:
            raise Decline
        return ops[0]
    for op in ops:
        if op.name is not None and op.name.value == name:
            return op
    raise Decline


class _Compiler:
    def __init__(self, schema: GraphQLSchema, doc: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.args: list[ArgSpec] = []

    def collect(self, type_name: str, nodes: list[FieldNode]) -> list[tuple[str, list[FieldNode]]]:
        """Subfields of ``nodes`` merged by response key, in document order."""
        out: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for n in nodes:
            if n.selection_set is None:
                raise Decline
            self._collect(type_name, n.selection_set, out, visited)
        if len(out) > MAX_KEYS:
            raise Decline
        return list(out.items())

    def _collect(
        self,
        type_name: str,
        sel: SelectionSetNode,
        out: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for s in sel.selections:
            if s.directives:
                raise Decline  # @skip/@include depend on variables
            if isinstance(s, FieldNode):
                key = s.alias.value if s.alias is not None else s.name.value
                out.setdefault(key, []).append(s)
            elif isinstance(s, InlineFragmentNode):
                cond = s.type_condition
                if cond is not None and cond.name.value != type_name:
                    raise Decline
                self._collect(type_name, s.selection_set, out, visited)
            elif isinstance(s, FragmentSpreadNode):
                name = s.name.value
                if name in visited:
                    continue
                visited.add(name)
                frag = self.fragments.get(name)
                if frag is None or frag.directives or frag.type_condition.name.value != type_name:
                    raise Decline
                self._collect(type_name, frag.selection_set, out, visited)

    def _arg(self, name: str, parent: str, node: FieldNode) -> int:
        gtype = self.schema.get_type(parent)
        definition = gtype.fields[node.name.value]  # type: ignore[union-attr]
        self.args.append(ArgSpec(name, definition, node))
        return len(self.args) - 1

    def query(self, op: OperationDefinitionNode) -> Selection:
        out: Selection = []
        fields: dict[str, list[FieldNode]] = {}
        self._collect("Query", op.selection_set, fields, set())
        if len(fields) > MAX_KEYS:
            raise Decline
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                out.append((key, Typename("Query")))
            elif name in ("aircraft", "flight"):
                kind: Kind = "aircraft" if name == "aircraft" else "flight"
                slot = self._arg(name, "Query", nodes[0])
                out.append((key, ById(kind, slot, self.row(kind, nodes))))
            elif name in ("fleet", "flights"):
                kind = "aircraft" if name == "fleet" else "flight"
                slot = self._arg(name, "Query", nodes[0])
                out.append((key, self.connection(kind, slot, False, nodes)))
            elif name == "analytics":
                out.append((key, AnalyticsRoot(self.analytics(nodes))))
            else:
                raise Decline
        # analytics and plain reads run under different intents: never mixed
        kinds = {isinstance(n, AnalyticsRoot) for _, n in out if not isinstance(n, Typename)}
        if len(kinds) > 1:
            raise Decline
        return out

    def select(
        self, type_name: str, nodes: list[FieldNode], pick: Callable[[str, list[FieldNode]], Node]
    ) -> Selection:
        """The subfields of ``nodes`` (an object of ``type_name``), each
        ``__typename`` or what ``pick(field name, its nodes)`` plans; ``pick``
        raises ``Decline`` for a field it cannot plan."""
        return [
            (
                key,
                Typename(type_name)
                if sub[0].name.value == "__typename"
                else pick(sub[0].name.value, sub),
            )
            for key, sub in self.collect(type_name, nodes)
        ]

    def analytics(self, nodes: list[FieldNode]) -> Selection:
        def pick(name: str, sub: list[FieldNode]) -> Node:
            if name not in ANALYTICS_FIELDS:
                raise Decline
            kind: AnalyticsKind = name
            slot = self._arg(f"Analytics.{name}", "Analytics", sub[0])
            return Analytic(kind, slot, self.analytic(kind, sub))

        return self.select("Analytics", nodes, pick)

    def analytic(self, kind: AnalyticsKind, nodes: list[FieldNode]) -> Selection:
        scalars = ANALYTICS_FIELDS[kind]

        def pick(name: str, sub: list[FieldNode]) -> Node:
            if name not in scalars:
                raise Decline
            return Scalar(name)

        return self.select(ANALYTICS_TYPES[kind], nodes, pick)

    def row(self, kind: Kind, nodes: list[FieldNode]) -> Selection:
        scalars = AIRCRAFT_FIELDS if kind == "aircraft" else FLIGHT_FIELDS

        def pick(name: str, sub: list[FieldNode]) -> Node:
            if name in scalars:
                return Column(kind, name)
            if kind == "aircraft" and name == "flights":
                slot = self._arg("Aircraft.flights", "Aircraft", sub[0])
                return self.connection("flight", slot, True, sub)
            if kind == "aircraft" and name == "latestFlight":
                return Related("flight", self.row("flight", sub))
            if kind == "flight" and name == "aircraft":
                return Related("aircraft", self.row("aircraft", sub))
            raise Decline

        return self.select("Aircraft" if kind == "aircraft" else "Flight", nodes, pick)

    def connection(self, kind: Kind, slot: int, nested: bool, nodes: list[FieldNode]) -> Connection:
        prefix = "Aircraft" if kind == "aircraft" else "Flight"

        def pick(name: str, sub: list[FieldNode]) -> Node:
            if name == "totalCount":
                return TotalCount()
            if name == "edges":
                return Edges(self.edge(kind, prefix, sub))
            if name == "pageInfo":
                return PageInfo(self.page_info(sub))
            raise Decline

        out = self.select(f"{prefix}Connection", nodes, pick)
        paged = any(isinstance(n, Edges | PageInfo) for _, n in out)
        counted = any(isinstance(n, TotalCount) for _, n in out)
        self.args[slot] = replace(self.args[slot], paged=paged, counted=counted)
        return Connection(kind, slot, nested, out)

    def edge(self, kind: Kind, prefix: str, nodes: list[FieldNode]) -> Selection:
        def pick(name: str, sub: list[FieldNode]) -> Node:
            if name == "cursor":
                return Cursor()
            if name == "node":
                return RowObject(kind, self.row(kind, sub))
            raise Decline

        return self.select(f"{prefix}Edge", nodes, pick)

    def page_info(self, nodes: list[FieldNode]) -> Selection:
        def pick(name: str, sub: list[FieldNode]) -> Node:
            if name == "hasNextPage":
                return HasNextPage()
            if name == "endCursor":
                return EndCursor()
            raise Decline

        return self.select("PageInfo", nodes, pick)


def compile_plan(schema: GraphQLSchema, doc: DocumentNode, operation_name: str | None) -> Plan:
    """The plan of a validated document's operation, or ``Decline``."""
    op = select_operation(doc, operation_name)
    if op.operation is not OperationType.QUERY or op.directives:
        raise Decline
    c = _Compiler(schema, doc)
    root = c.query(op)
    intent: Intent = "analytics" if any(isinstance(n, AnalyticsRoot) for _, n in root) else "read"
    return Plan(operation=op, root=root, args=c.args, intent=intent)
