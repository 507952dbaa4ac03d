"""Selection to plan tree: decides whether a validated operation lies
wholly inside the plannable subset and, if so, describes its response shape
as a tree of ``Node``s. The compiler walks the schema from ``Query``: each
selected field must declare a plan (``gateway.api.plan.fields``) that fits
where it stands (a column in an object, an edge in a connection, ...), and
the objects below it are the field's GraphQL type. Fields are collected and
merged by response key in document order, as graphql-core does, so the
JSON keys come out in the same order as the resolver path's.

An ``analytics { ... }`` plan holds no other root data field, since it runs
with the ``analytics`` intent.

Anything outside the subset (mutations, subscriptions, directives, fields
without a plan, objects of more than ``MAX_KEYS`` response keys) raises
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
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)

from gateway.api.plan.fields import (
    AnalyticPlan,
    AnalyticsPlan,
    Argument,
    ColumnPlan,
    FieldPlan,
    PagePlan,
    ParamPlan,
    Part,
    PartPlan,
    RelatedPlan,
    RowPlan,
    plan_of,
    python_arguments,
)
from gateway.api.plan.nodes import (
    Analytic,
    AnalyticsRoot,
    ById,
    Column,
    Connection,
    Cursor,
    Edges,
    EndCursor,
    HasNextPage,
    Node,
    PageInfo,
    Param,
    Related,
    RowObject,
    Selection,
    TotalCount,
    Typename,
)
from gateway.data.planned_values import Codec, value_text

MAX_KEYS = 50  # response keys per planned object: bounds the statement text

# The codec a column's GraphQL type implies (``ColumnPlan.codec`` overrides).
CODECS: dict[str, Codec] = {
    "ID": "id",
    "String": "text",
    "JSON": "json",
    "Int": "int",
    "Float": "float",
    "DateTime": "timestamp",
    "Date": "date",
}


class Decline(Exception):
    """This operation (or these arguments) is for the resolver path."""


Intent = Literal["read", "analytics"]

# leaf parts of a connection: (part, node)
_PART_NODES: dict[Part, Node] = {
    "totalCount": TotalCount(),
    "cursor": Cursor(),
    "hasNextPage": HasNextPage(),
    "endCursor": EndCursor(),
}


@dataclass(frozen=True)
class ArgSpec:
    """A field whose arguments are bound per request."""

    plan: RowPlan | PagePlan | AnalyticPlan
    definition: GraphQLField
    node: FieldNode
    arguments: tuple[Argument, ...]  # how they become the resolver's (``bind``)
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


def codec_of(field_def: GraphQLField, declared: ColumnPlan) -> Codec:
    """The codec of a column field: declared, or implied by its type."""
    if declared.codec is not None:
        return declared.codec
    t = field_def.type.of_type if isinstance(field_def.type, GraphQLNonNull) else field_def.type
    if isinstance(t, GraphQLEnumType):
        return "enum"
    if isinstance(t, GraphQLScalarType) and t.name in CODECS:
        return CODECS[t.name]
    raise Decline


def _listed(field_def: GraphQLField) -> bool:
    t = field_def.type.of_type if isinstance(field_def.type, GraphQLNonNull) else field_def.type
    return isinstance(t, GraphQLList)


# (plan, the field's schema definition, its merged nodes) -> its node
Pick = Callable[[FieldPlan, GraphQLField, list[FieldNode]], Node]


class _Compiler:
    def __init__(self, schema: GraphQLSchema, doc: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.args: list[ArgSpec] = []

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

    def select(
        self, gtype: GraphQLObjectType, sets: list[SelectionSetNode], pick: Pick
    ) -> Selection:
        """The fields of selection sets on ``gtype`` merged by response key
        in document order, each ``__typename`` or what ``pick`` makes of its
        field's plan (``Decline`` for a plan that does not fit there)."""
        merged: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for s in sets:
            self._collect(gtype.name, s, merged, visited)
        if len(merged) > MAX_KEYS:
            raise Decline
        out: Selection = []
        for key, sub in merged.items():
            name = sub[0].name.value
            if name == "__typename":
                out.append((key, Typename(gtype.name)))
                continue
            field_def = gtype.fields.get(name)
            p = None if field_def is None else plan_of(field_def)
            if field_def is None or p is None:
                raise Decline
            out.append((key, pick(p, field_def, sub)))
        return out

    def _object(self, field_def: GraphQLField, nodes: list[FieldNode], pick: Pick) -> Selection:
        gtype = get_named_type(field_def.type)
        sets = [n.selection_set for n in nodes if n.selection_set is not None]
        if not isinstance(gtype, GraphQLObjectType) or len(sets) != len(nodes):
            raise Decline
        return self.select(gtype, sets, pick)

    def _arg(self, p: RowPlan | PagePlan | AnalyticPlan, d: GraphQLField, n: FieldNode) -> int:
        self.args.append(ArgSpec(p, d, n, python_arguments(d)))
        return len(self.args) - 1

    def query(self, op: OperationDefinitionNode) -> Selection:
        root = self.schema.query_type
        assert root is not None
        out = self.select(root, [op.selection_set], self._root)
        # analytics and plain reads run under different intents: never mixed
        kinds = {isinstance(n, AnalyticsRoot) for _, n in out if not isinstance(n, Typename)}
        if len(kinds) > 1:
            raise Decline
        return out

    def _root(self, p: FieldPlan, d: GraphQLField, nodes: list[FieldNode]) -> Node:
        if isinstance(p, RowPlan):
            slot = self._arg(p, d, nodes[0])
            return ById(p.kind, slot, self._object(d, nodes, self._row))
        if isinstance(p, PagePlan) and p.parent is None:
            return self.connection(p, self._arg(p, d, nodes[0]), d, nodes)
        if isinstance(p, AnalyticsPlan):
            return AnalyticsRoot(self._object(d, nodes, self._analytics))
        raise Decline

    def _row(self, p: FieldPlan, d: GraphQLField, nodes: list[FieldNode]) -> Node:
        if isinstance(p, ColumnPlan):
            return Column(value_text(codec_of(d, p), p.column))
        if isinstance(p, RelatedPlan):
            return Related(p.source, self._object(d, nodes, self._row))
        if isinstance(p, PagePlan) and p.parent is not None:
            return self.connection(p, self._arg(p, d, nodes[0]), d, nodes)
        raise Decline

    def _analytics(self, p: FieldPlan, d: GraphQLField, nodes: list[FieldNode]) -> Node:
        if not isinstance(p, AnalyticPlan):
            raise Decline
        slot = self._arg(p, d, nodes[0])
        return Analytic(slot, _listed(d), self._object(d, nodes, self._analytic))

    def _analytic(self, p: FieldPlan, d: GraphQLField, nodes: list[FieldNode]) -> Node:
        if isinstance(p, ColumnPlan):
            return Column(value_text(codec_of(d, p), p.column))
        if isinstance(p, ParamPlan):
            return Param(p.name)
        raise Decline

    def connection(
        self, p: PagePlan, slot: int, d: GraphQLField, nodes: list[FieldNode]
    ) -> Connection:
        def edge(q: FieldPlan, ed: GraphQLField, sub: list[FieldNode]) -> Node:
            if isinstance(q, PartPlan) and q.part == "node":
                return RowObject(self._object(ed, sub, self._row))
            return _part(q, ("cursor",))

        def pick(q: FieldPlan, cd: GraphQLField, sub: list[FieldNode]) -> Node:
            if isinstance(q, PartPlan) and q.part == "edges":
                return Edges(self._object(cd, sub, edge))
            if isinstance(q, PartPlan) and q.part == "pageInfo":
                info = self._object(cd, sub, lambda r, _d, _s: _part(r, _PAGE_INFO))
                return PageInfo(info)
            return _part(q, ("totalCount",))

        out = self._object(d, nodes, pick)
        paged = any(isinstance(n, Edges | PageInfo) for _, n in out)
        counted = any(isinstance(n, TotalCount) for _, n in out)
        self.args[slot] = replace(self.args[slot], paged=paged, counted=counted)
        return Connection(p.kind, slot, p.parent is not None, out)


_PAGE_INFO: tuple[Part, ...] = ("hasNextPage", "endCursor")


def _part(p: FieldPlan, allowed: tuple[Part, ...]) -> Node:
    if isinstance(p, PartPlan) and p.part in allowed:
        return _PART_NODES[p.part]
    raise Decline


def compile_plan(schema: GraphQLSchema, doc: DocumentNode, operation_name: str | None) -> Plan:
    """The plan of a validated document's operation, or ``Decline``."""
    op = select_operation(doc, operation_name)
    if op.operation is not OperationType.QUERY or op.directives:
        raise Decline
    c = _Compiler(schema, doc)
    root = c.query(op)
    intent: Intent = "analytics" if any(isinstance(n, AnalyticsRoot) for _, n in root) else "read"
    return Plan(operation=op, root=root, args=c.args, intent=intent)
