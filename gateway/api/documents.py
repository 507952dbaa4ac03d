"""Query documents: token, depth and alias limits, then validation and the
one-field rule for mutations, all before any resolver (and so any SQL)
runs; results cached per process by a digest of the query text (LRU,
bounded by entries and by bytes), so a repeated query is checked once.

Aliases are counted through fragments (a fragment spread N times counts N
times) and fragment sizes are memoised, so neither cycles nor nested
spreads can make the check itself expensive. Limits run before validation
because some validation rules are quadratic in the number of fields.

Must not: write SQL.
"""

from __future__ import annotations

import hashlib
import sys
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

from gateway.api.errors import strip_suggestions
from gateway.config import Limits
from gateway.errors import BadUserInput, GatewayError, QueryTooComplex

# Memory of a parsed document per token (nodes, locations, the token list):
# about 400 bytes; with the text, a cached document's weight.
AST_BYTES_PER_TOKEN = 400
ENTRY_OVERHEAD = 256


def document_key(query: str) -> bytes:
    """The caches' key for a query text: a digest, so a cache keeps no copy
    of the text itself."""
    return hashlib.blake2b(query.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode | None
    errors: tuple[GatewayError, ...]
    key: bytes = b""
    # bytes this outcome keeps alive: the text and parsed form of a
    # document (the document's source holds the text), or the messages
    weight: int = ENTRY_OVERHEAD

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
    """Tokens up to ``limit + 1``, comments included: a document padded with
    comments would otherwise pass the limit and cost its whole length to
    lex and parse (a syntax error surfaces in ``parse``)."""
    lexer = Lexer(Source(query))
    n = 0
    token = lexer.token
    try:
        while (token := lexer.read_next_token(token.end)).kind is not TokenKind.EOF:
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


def mutation_fields(doc: DocumentNode) -> int:
    """The most root fields (response keys, ``__typename`` aside) that one
    mutation operation of a valid document selects, through aliases, inline
    fragments and fragment spreads; directives are not evaluated."""
    fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}

    def keys(sel: SelectionSetNode, seen: frozenset[str]) -> set[str]:
        out: set[str] = set()
        for node in sel.selections:
            if isinstance(node, FieldNode):
                if node.name.value != "__typename":
                    out.add(node.alias.value if node.alias else node.name.value)
            elif isinstance(node, InlineFragmentNode):
                out |= keys(node.selection_set, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                frag = fragments.get(name)
                if frag is not None and name not in seen:
                    out |= keys(frag.selection_set, seen | {name})
        return out

    return max(
        (
            len(keys(op.selection_set, frozenset()))
            for op in doc.definitions
            if isinstance(op, OperationDefinitionNode) and op.operation is OperationType.MUTATION
        ),
        default=0,
    )


class DocumentCache:
    """Parses, limit-checks and validates query texts; remembers outcomes,
    at most ``maxsize`` of them and ``limits.cache_bytes`` of their weight
    (a document heavier than that is checked again each time)."""

    def __init__(
        self, schema: GraphQLSchema, limits: Limits, *, prod: bool, maxsize: int = 512
    ) -> None:
        self._schema = schema
        self._limits = limits
        self._prod = prod
        self._maxsize = maxsize
        self._max_bytes = limits.cache_bytes
        self._bytes = 0
        self._entries: OrderedDict[bytes, Prepared] = OrderedDict()
        rules = [*specified_rules, MaybeNullValidationRule, OneOfInputValidationRule]
        if prod:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)

    def get(self, query: str) -> Prepared:
        key = document_key(query)
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            return hit
        prepared = self._prepare(query, key)
        if prepared.weight <= self._max_bytes:
            self._entries[key] = prepared
            self._bytes += prepared.weight
            while len(self._entries) > self._maxsize or self._bytes > self._max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1].weight
        return prepared

    def _message(self, text: str) -> str:
        return strip_suggestions(text) if self._prod else text

    def _prepare(self, query: str, key: bytes) -> Prepared:
        def failed(*errors: GatewayError) -> Prepared:
            weight = ENTRY_OVERHEAD + sum(sys.getsizeof(e.message) for e in errors)
            return Prepared(None, errors, key, weight)

        tokens = count_tokens(query, self._limits.max_tokens)
        if tokens > self._limits.max_tokens:
            return failed(QueryTooComplex(f"Query has more than {self._limits.max_tokens} tokens"))
        try:
            doc = parse(query, max_tokens=self._limits.max_tokens + 1)
        except GraphQLError as exc:
            return failed(BadUserInput(self._message(f"Syntax error: {exc.message}")))
        limit_errors = check_limits(doc, self._limits)
        if limit_errors:
            return failed(*limit_errors)
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
            return failed(*out)
        if mutation_fields(doc) > 1:
            # Each mutation field commits on its own: a later one failing
            # would leave the earlier ones written.
            return failed(
                BadUserInput(
                    "A mutation operation may select one mutation field; send each as its"
                    " own operation"
                )
            )
        # the parsed form keeps comments in its token list too ('#' bounds them)
        weight = (
            ENTRY_OVERHEAD
            + sys.getsizeof(query)
            + AST_BYTES_PER_TOKEN * (tokens + query.count("#"))
        )
        return Prepared(doc, (), key, weight)
