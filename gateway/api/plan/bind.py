"""Per-request argument binding: coerces the request's variables and each
planned field's arguments exactly as the resolvers get them (graphql-core's
coercion, then Strawberry's conversion of input objects), and checks them
with the resolver's own functions (``gateway.api.cursors``, the filter
conversions and analytics bindings the fields' plans name); any argument
the resolvers would refuse raises ``Decline``, so the resolver path answers
with its own error.

Binding hands out the placeholders, so the statement's text depends only on
the *shape* of the arguments (which filters and cursors are given).

Must not: write SQL text, run SQL or open connections.
"""

from __future__ import annotations

import uuid
from typing import Any

from graphql import GraphQLError, GraphQLSchema
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.types.arguments import convert_argument

from gateway.api import cursors
from gateway.api.plan.compile import ArgSpec, Decline, Plan
from gateway.api.plan.fields import AnalyticPlan, Bound, PagePlan
from gateway.data.fragments import Params
from gateway.data.planned_sources import PARENT, filter_conditions, seek_condition
from gateway.errors import GatewayError


def bind(
    plan: Plan,
    schema: GraphQLSchema,
    variables: dict[str, Any] | None,
    org_id: uuid.UUID,
    max_first: int,
) -> tuple[list[Bound], list[Any]]:
    """Placeholders per argument-bearing field and the values to send
    (``$1`` is the org), or ``Decline``."""
    # Strawberry's schema behind graphql-core's: its scalars and name conversion
    strawberry_schema = schema._strawberry_schema  # type: ignore[attr-defined]
    scalars = strawberry_schema.schema_converter.scalar_registry
    config = strawberry_schema.config
    try:
        coerced = get_variable_values(
            schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            raise Decline
        p = Params(org_id)
        bounds: list[Bound] = []
        for spec in plan.args:
            raw = get_argument_values(spec.definition, spec.node, coerced)
            args = {
                python: raw[name] if t is None else convert_argument(raw[name], t, scalars, config)
                for name, python, t in spec.arguments
                if name in raw
            }
            bounds.append(_bind_field(p, spec, args, max_first))
        return bounds, p.values
    except (GatewayError, GraphQLError, ValueError, TypeError, KeyError):
        raise Decline from None


def _bind_field(p: Params, spec: ArgSpec, args: dict[str, Any], max_first: int) -> Bound:
    plan = spec.plan
    if isinstance(plan, AnalyticPlan):
        return plan.bind(p, p.values[0], args)
    if not isinstance(plan, PagePlan):
        return Bound(id_param=p.add(cursors.parse_id(args["id"])))
    # Arguments are checked even when only totalCount is asked: the resolver
    # refuses them all the same. Unused values are not sent (PostgreSQL cannot
    # type a parameter no statement text mentions): they go to a scratch Params.
    seek = p if spec.paged else Params()
    p = p if spec.paged or spec.counted else Params()
    size = cursors.page_size(args.get("first"), max_first)
    key = plan.cursor(args.get("after"))
    if plan.parent is not None:
        cond = plan.parent.page(seek, PARENT, key)
        count = plan.parent.count(PARENT)
    else:
        flt = None if plan.filter is None else plan.filter(args.get("filter"))
        count = filter_conditions(p, plan.kind, flt)
        cond = list(count)
        if key is not None:
            cond.append(seek_condition(seek, plan.kind, key))
    if not spec.paged:
        return Bound(cond=tuple(cond), count_cond=tuple(count))
    return Bound(
        cond=tuple(cond),
        count_cond=tuple(count),
        size_param=p.add(size),
        limit_param=p.add(size + 1),
    )
