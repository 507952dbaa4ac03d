"""Query documents: token, depth and alias limits, then validation, all
before any resolver (and so any SQL) runs; results cached per process by
query text (LRU), so a repeated query is checked once.

Aliases are counted through fragments (a fragment spread N times counts N
times) and fragment sizes are memoised, so neither cycles nor nested
spreads can make the check itself expensive. Limits run before validation
because some validation rules are quadratic in the number of fields.

Must not: write SQL.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Source,
    parse,
    specified_rules,
    validate,
)
from graphql.language.lexer import Lexer
from graphql.language.token_kind import TokenKind
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.config import Limits
from gateway.errors import BadUserInput, GatewayError, QueryTooComplex

SUGGESTION = re.compile(r"\s*Did you mean .*?\?")


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode | None
    errors: tuple[GatewayError, ...]

    def operation_type(self, name: str | None) -> OperationType:
        """The type of the operation to run; BAD_USER_INPUT when ambiguous."""
        if self.document is None:
            raise BadUserInput("No document")
        ops = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        if name is None:
            if len(ops) != 1:
                raise BadUserInput("operationName is required when the document has several")
            return ops[0].operation
        for op in ops:
            if op.name is not None and op.name.value == name:
                return op.operation
        raise BadUserInput("Unknown operationName")


def count_tokens(query: str, limit: int) -> int:
    """Tokens up to ``limit + 1`` (a syntax error surfaces in ``parse``)."""
    lexer = Lexer(Source(query))
    n = 0
    try:
        while lexer.advance().kind is not TokenKind.EOF:
            n += 1
            if n > limit:
                break
    except GraphQLError:
        pass
    return n


class _Measure:
    """Depth, alias count and estimated cost of operations, fragments
    memoised. The cost estimates the rows a query may ask for: each field
    counts 1, and a field with a ``first`` argument multiplies what it selects
    by that many (a variable counts as the page cap, since the check runs once
    per query text, before variables are known)."""

    def __init__(self, doc: DocumentNode, max_first: int) -> None:
        self.fragments = {
            d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.max_first = max_first
        self.memo: dict[str, tuple[int, int, int]] = {}
        self.visiting: set[str] = set()

    def _page(self, node: FieldNode) -> int:
        for arg in node.arguments or ():
            if arg.name.value != "first":
                continue
            if isinstance(arg.value, IntValueNode):
                return max(1, min(int(arg.value.value), self.max_first))
            return self.max_first
        return 1

    def selection(self, sel: SelectionSetNode | None) -> tuple[int, int, int]:
        depth, aliases, cost = 0, 0, 0
        if sel is None:
            return 0, 0, 0
        for node in sel.selections:
            if isinstance(node, FieldNode):
                if node.alias is not None:
                    aliases += 1
                if node.name.value.startswith("__") and node.name.value != "__typename":
                    continue  # introspection: refused in prod, bounded by the schema in dev
                d, a, c = self.selection(node.selection_set)
                depth, aliases = max(depth, d + 1), aliases + a
                cost += 1 + self._page(node) * c
            elif isinstance(node, InlineFragmentNode):
                d, a, c = self.selection(node.selection_set)
                depth, aliases, cost = max(depth, d), aliases + a, cost + c
            elif isinstance(node, FragmentSpreadNode):
                d, a, c = self.fragment(node.name.value)
                depth, aliases, cost = max(depth, d), aliases + a, cost + c
        return depth, aliases, cost

    def fragment(self, name: str) -> tuple[int, int, int]:
        if name in self.memo:
            return self.memo[name]
        frag = self.fragments.get(name)
        if frag is None or name in self.visiting:
            return 0, 0, 0  # unknown or cyclic: validation reports it
        self.visiting.add(name)
        result = self.selection(frag.selection_set)
        self.visiting.discard(name)
        self.memo[name] = result
        return result


def check_limits(doc: DocumentNode, limits: Limits) -> list[GatewayError]:
    m = _Measure(doc, limits.max_first)
    errors: list[GatewayError] = []
    for op in doc.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        depth, aliases, cost = m.selection(op.selection_set)
        if depth > limits.max_depth:
            errors.append(
                QueryTooComplex(f"Query depth {depth} exceeds the limit of {limits.max_depth}")
            )
        if aliases > limits.max_aliases:
            errors.append(
                QueryTooComplex(f"Query uses {aliases} aliases; the limit is {limits.max_aliases}")
            )
        if cost > limits.max_cost:
            errors.append(
                QueryTooComplex(
                    f"Query may return about {cost} objects; the limit is {limits.max_cost}"
                )
            )
    return errors


class DocumentCache:
    """Parses, limit-checks and validates query texts; remembers outcomes."""

    def __init__(
        self, schema: GraphQLSchema, limits: Limits, *, prod: bool, maxsize: int = 512
    ) -> None:
        self._schema = schema
        self._limits = limits
        self._prod = prod
        self._maxsize = maxsize
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        rules = [*specified_rules, MaybeNullValidationRule, OneOfInputValidationRule]
        if prod:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)

    def get(self, query: str) -> Prepared:
        hit = self._entries.get(query)
        if hit is not None:
            self._entries.move_to_end(query)
            return hit
        prepared = self._prepare(query)
        self._entries[query] = prepared
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
        return prepared

    def _message(self, text: str) -> str:
        return SUGGESTION.sub("", text) if self._prod else text

    def _prepare(self, query: str) -> Prepared:
        if count_tokens(query, self._limits.max_tokens) > self._limits.max_tokens:
            return Prepared(
                None, (QueryTooComplex(f"Query has more than {self._limits.max_tokens} tokens"),)
            )
        try:
            doc = parse(query, max_tokens=self._limits.max_tokens + 1)
        except GraphQLError as exc:
            return Prepared(None, (BadUserInput(self._message(f"Syntax error: {exc.message}")),))
        limit_errors = check_limits(doc, self._limits)
        if limit_errors:
            return Prepared(None, tuple(limit_errors))
        errors = validate(self._schema, doc, self._rules, max_errors=20)
        if errors:
            out: list[GatewayError] = []
            for e in errors:
                if "introspection" in e.message.lower() and self._prod:
                    out.append(
                        BadUserInput("Introspection is disabled", reason="INTROSPECTION_DISABLED")
                    )
                else:
                    out.append(BadUserInput(self._message(e.message)))
            return Prepared(None, tuple(out))
        return Prepared(doc, ())
