"""The shape of a planned statement (``gateway.api.plan``): compact JSON
text objects and lists nested as PostgreSQL subqueries, the page parts of
a connection, the outer ``select``, and the one data function that runs a
planned statement and hands back its JSON text. How one column is written
is ``gateway.data.planned_values``; where rows come from is
``gateway.data.planned_sources``.

Objects and lists are concatenated text, not ``json_build_object`` /
``json_agg``: about a third cheaper for PostgreSQL, and compact. Analytics
numbers are written number by number as ``orjson`` prints the resolvers'
Python values, over the very statements of ``gateway.data.analytics*``.

Must not: choose a database node, or know about HTTP or GraphQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.data.planned_sources import count_source
from gateway.data.planned_values import Kind, cursor
from gateway.db.connection import TenantConnection


async def fetch_json(conn: TenantConnection, sql: str, values: Sequence[Any]) -> str | None:
    """Run a planned statement; its row's values, joined, are the response's
    JSON text (None: no row or a NULL, the statement declined; the resolver
    path answers)."""
    row = await conn.fetchrow(sql, *values)
    if row is None:
        return None
    parts = tuple(row)  # (``in`` on a Record tests its column names)
    return None if None in parts else "".join(parts)


class Chain(str):
    """SQL text of a concatenation that yields JSON text, with its pieces:
    ``(True, json)`` a constant, ``(False, sql)`` an expression. Nesting one
    in another splices the pieces and merges neighbouring constants: each
    ``||`` copies the whole text to its left, so a list written as
    ``'{"k":' || (select '[' || agg || ']') || '}'`` and wrapped in two more
    objects was copied six times, each copy a fresh allocation in the
    backend; spliced it is ``'{"a":{"b":{"k":[' || (select agg) || ']}}}'``,
    copied twice."""

    parts: tuple[tuple[bool, str], ...]


def chain(pieces: Sequence[tuple[bool, str] | str]) -> Chain:
    """A ``Chain`` of JSON text constants, ``Chain`` values (spliced) and
    other SQL expressions (a ``str``), in order."""
    parts: list[tuple[bool, str]] = []
    for piece in pieces:
        for is_const, text in _pieces(piece):
            if is_const and parts and parts[-1][0]:
                parts[-1] = (True, parts[-1][1] + text)
            else:
                parts.append((is_const, text))
    sql = " || ".join(literal(text) if is_const else text for is_const, text in parts)
    out = Chain(sql if len(parts) == 1 else f"({sql})")
    out.parts = tuple(parts)
    return out


def _pieces(piece: tuple[bool, str] | str) -> Sequence[tuple[bool, str]]:
    if isinstance(piece, Chain):
        return piece.parts
    if isinstance(piece, tuple):
        return (piece,)
    return ((False, piece),)


def text_object(parts: Sequence[tuple[str, str]]) -> Chain:
    """Compact JSON object text from (GraphQL name, JSON text expression)."""
    pieces: list[tuple[bool, str] | str] = []
    for i, (key, value) in enumerate(parts):
        pieces += [(True, ("{" if i == 0 else ",") + f'"{key}":'), value]
    pieces.append((True, "}" if parts else "{}"))
    return chain(pieces)


def text_list(item: str, source: str, t: str, order: str, max_rows: int | None = None) -> Chain:
    """Compact JSON array text of ``item`` over the rows of ``source`` in
    ``order``; more than ``max_rows`` rows (the resolver's error) fail the
    statement. The brackets stay outside the subquery (one value, also over
    no rows), so an enclosing object merges them with its own constants."""
    if max_rows is None:
        # ARRAY(...) keeps the subquery's order: a source already in that
        # order (a function's ORDER BY) is not sorted again, as the ordered
        # aggregate would (a tenth of fleetStats' PostgreSQL time for 1000 rows)
        items = f"array_to_string(array(select {item} from ({source}) {t} order by {order}), ',')"
        return chain([(True, "["), items, (True, "]")])
    agg = (
        f"case when count(*) > {int(max_rows)}"
        f" then ('not planned: ' || count(*)::text)::int::text"
        f" else coalesce(string_agg({item}, ',' order by {order}), '') end"
    )
    return chain([(True, "["), f"(select {agg} from ({source}) {t})", (True, "]")])


def text_row(item: str, source: str, t: str, cond: str = "true") -> str:
    """JSON text of ``item`` over the single row of ``source``."""
    return f"(select {item} from ({source}) {t} where {cond})"


# float_text needs PostgreSQL's shortest float output; otherwise decline.
SHORTEST_FLOATS = "current_setting('extra_float_digits')::int > 0"


# -- statement shape ------------------------------------------------------------
# The planner (``gateway.api.plan.emit``) walks a plan and nests these; every
# piece of SQL text it sends comes from here. Every value is compact JSON
# *text* built by concatenation (cheaper for PostgreSQL than
# ``json_build_object``/``json_agg``, and the bytes go into the response as
# they are), so no piece may ever be NULL: a NULL would blank the whole text.


def literal(text: str) -> str:
    """A string constant. Callers pass GraphQL names ([_A-Za-z][_0-9A-Za-z]*)
    or JSON text made of them; quotes are doubled all the same."""
    return "'" + text.replace("'", "''") + "'"


def json_string(text: str) -> Chain:
    """JSON text of a string constant (a GraphQL name)."""
    return chain([(True, f'"{text}"')])


def _columns(obj: str) -> str:
    """The pieces of the ``data`` object's text as columns, in order: joined
    by ``fetch_json``, not by ``||`` (which would copy the whole text once
    more per piece after the first)."""
    return ", ".join(literal(text) if is_const else text for is_const, text in _pieces(obj))


def root_statement(obj: str) -> str:
    """The statement: one row, the pieces of the response's ``data`` object.
    ``$1`` (the org) is referenced even when no table is read
    (``{ __typename }``)."""
    return f"select {_columns(obj)} where $1::uuid is not null"


def analytics_statement(text_obj: str) -> str:
    """The statement for an ``analytics`` root: no row (the resolvers answer)
    unless the session prints shortest floats, which ``float_text`` needs."""
    return f"select {_columns(text_obj)} where {SHORTEST_FLOATS} and $1::uuid is not null"


def as_text(param: str) -> str:
    """A bound timestamp parameter's JSON text (bound as JSON text already)."""
    return f"{param}::text"


def all_bound(params: Sequence[str]) -> str:
    """A condition that references every parameter, so each one appears in
    the statement whether or not its value is selected."""
    return " and ".join(f"{p}::text is not null" for p in params)


def subquery(obj: str, source: str = "") -> str:
    """``obj`` over the single row of ``source`` (``from ... where ...``),
    ``null`` when there is none; no source: over no table."""
    return f"coalesce((select {obj} {source}), 'null')" if source else f"(select {obj})"


def count_value(kind: Kind, cond: Sequence[str]) -> str:
    return f"({count_source(kind, cond)})::text"


def page_object(obj: str, source: str, t: str) -> str:
    """``obj`` aggregated over the rows of a page ``source`` aliased ``t``
    (an aggregate over no rows still gives its one row)."""
    return f"(select {obj} from ({source}) {t})"


def page_edges(edge: str, t: str, size_param: str) -> Chain:
    """The page's first ``size`` rows as a JSON array of ``edge``; the
    page source reads one row more, for ``hasNextPage``."""
    agg = (
        f"coalesce(string_agg({edge}, ',' order by {t}.dbx_rn)"
        f" filter (where {t}.dbx_rn <= {size_param}), '')"
    )
    return chain([(True, "["), agg, (True, "]")])


def page_has_next(size_param: str) -> str:
    return f"case when count(*) > {size_param} then 'true' else 'false' end"


def page_end_cursor(kind: Kind, t: str, size_param: str) -> str:
    return (
        f"coalesce((array_agg({cursor(kind, t)} order by {t}.dbx_rn desc)"
        f" filter (where {t}.dbx_rn <= {size_param}))[1], 'null')"
    )
