"""Plan tree to one SQL statement: nests the pieces of
``gateway.data.planned*`` along the plan, with the placeholders that
binding (``bind``) handed out; the text depends only on the plan and the
*shape* of the arguments, so the plan caches it per shape.

The statement is a single ``select`` of the response's ``data`` as JSON
text: root fields are correlated subqueries, connections aggregate a keyset
page (``string_agg`` ordered by position, one extra row for ``hasNextPage``),
nested objects are correlated subqueries on the parent row.

Must not: write SQL text, run SQL or open connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gateway.api.plan.compile import Decline, Plan
from gateway.api.plan.fields import Bound
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
from gateway.data import planned
from gateway.data.planned_sources import PARENT, by_id, page_source
from gateway.data.planned_values import column_text, cursor

T = TypeVar("T")


def shape(bounds: list[Bound]) -> tuple[Bound, ...]:
    """What the statement text depends on (frozen, so hashable)."""
    return tuple(bounds)


def statement(plan: Plan, bounds: list[Bound]) -> str:
    return _Emitter(bounds).root(plan.root)


class _Emitter:
    def __init__(self, bounds: list[Bound]) -> None:
        self.bounds = bounds
        self.n = 0

    def alias(self) -> str:
        self.n += 1
        return f"t{self.n}"

    def root(self, sel: Selection) -> str:
        if any(isinstance(n, AnalyticsRoot) for _, n in sel):
            return self.analytics_root(sel)
        return planned.root_statement(planned.text_object([(k, self.node(n, "")) for k, n in sel]))

    # -- analytics: compact JSON text ------------------------------------------
    def analytics_root(self, sel: Selection) -> str:
        obj = self._text_fields(sel, AnalyticsRoot, lambda n: self.analytics(n.selection))
        return planned.analytics_statement(obj)

    def analytics(self, sel: Selection) -> str:
        return self._text_fields(sel, Analytic, self.analytic)

    def _text_fields(self, sel: Selection, kind: type[T], render: Callable[[T], str]) -> str:
        """A JSON text object of ``__typename`` and ``kind`` entries."""
        parts: list[tuple[str, str]] = []
        for key, n in sel:
            if isinstance(n, Typename):
                parts.append((key, planned.json_string(n.name)))
            elif isinstance(n, kind):
                parts.append((key, render(n)))
            else:
                raise Decline
        return planned.text_object(parts)

    def analytic(self, a: Analytic) -> str:
        b = self.bounds[a.slot]
        if b.source is None:
            raise Decline
        values = dict(b.values)
        t = self.alias()
        parts: list[tuple[str, str]] = []
        for key, n in a.selection:
            if isinstance(n, Typename):
                parts.append((key, planned.json_string(n.name)))
            elif isinstance(n, Column):
                parts.append((key, column_text(n.text, t)))
            elif isinstance(n, Param) and n.name in values:
                parts.append((key, values[n.name]))
            else:
                raise Decline
        obj = planned.text_object(parts)
        src = b.source
        if a.listed and src.order:
            return planned.text_list(obj, src.sql, t, f"{t}.{src.order}", src.max_rows)
        if a.listed or src.order:
            raise Decline  # a list field over a one-row source, or the reverse
        return planned.text_row(obj, src.sql, t, b.row_cond)

    def row(self, sel: Selection, t: str) -> str:
        return planned.text_object([(k, self.node(n, t)) for k, n in sel])

    def node(self, n: Node, t: str) -> str:
        if isinstance(n, Typename):
            return planned.json_string(n.name)
        if isinstance(n, Column):
            return column_text(n.text, t)
        if isinstance(n, ById):
            s = self.alias()
            obj = self.row(n.selection, s)
            return planned.subquery(obj, by_id(n.kind, s, self.bounds[n.slot].id_param))
        if isinstance(n, Related):
            s = self.alias()
            return planned.subquery(self.row(n.selection, s), n.source(s, t))
        if isinstance(n, Connection):
            return self.connection(n, t)
        raise Decline  # edge and page parts are handled by ``connection``

    def connection(self, c: Connection, parent: str) -> str:
        b = self.bounds[c.slot]
        s = self.alias()
        paged = False
        parts: list[tuple[str, str]] = []
        for key, part in c.selection:
            if isinstance(part, Typename):
                parts.append((key, planned.json_string(part.name)))
            elif isinstance(part, TotalCount):
                cond = [x.replace(PARENT, parent) for x in b.count_cond]
                parts.append((key, planned.count_value(c.kind, cond)))
            elif isinstance(part, Edges):
                paged = True
                parts.append((key, planned.page_edges(self.edge(c, part, s), s, b.size_param)))
            elif isinstance(part, PageInfo):
                paged = True
                parts.append((key, self.page_info(c, part, s)))
        obj = planned.text_object(parts)
        if not paged:
            return planned.subquery(obj)
        cond = [x.replace(PARENT, parent) for x in b.cond]
        return planned.page_object(obj, page_source(c.kind, cond, b.limit_param), s)

    def edge(self, c: Connection, e: Edges, s: str) -> str:
        parts: list[tuple[str, str]] = []
        for key, part in e.selection:
            if isinstance(part, Typename):
                parts.append((key, planned.json_string(part.name)))
            elif isinstance(part, Cursor):
                parts.append((key, cursor(c.kind, s)))
            elif isinstance(part, RowObject):
                parts.append((key, self.row(part.selection, s)))
        return planned.text_object(parts)

    def page_info(self, c: Connection, pi: PageInfo, s: str) -> str:
        size = self.bounds[c.slot].size_param
        parts: list[tuple[str, str]] = []
        for key, part in pi.selection:
            if isinstance(part, Typename):
                parts.append((key, planned.json_string(part.name)))
            elif isinstance(part, HasNextPage):
                parts.append((key, planned.page_has_next(size)))
            elif isinstance(part, EndCursor):
                parts.append((key, planned.page_end_cursor(c.kind, s, size)))
        return planned.text_object(parts)
