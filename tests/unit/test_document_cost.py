"""The estimated cost of a query (``check_limits``, ``DBX_MAX_COST``): each
field counts 1, a field with ``first: n`` multiplies what it selects by
n (clamped to 1..DBX_MAX_FIRST; a variable counts as the cap), fragments
count where they are spread; also depth and aliases. No schema needed."""

from __future__ import annotations

import re

import pytest
from graphql import parse

from gateway.api.documents import check_limits
from gateway.config import Limits


def measured(query: str, max_first: int = 500) -> dict[str, int]:
    """Cost, depth and aliases of each operation, read from the refusals of
    limits that refuse everything."""
    limits = Limits(max_cost=-1, max_depth=-1, max_aliases=-1, max_first=max_first)
    out: dict[str, int] = {}
    for e in check_limits(parse(query), limits):
        for key, pattern in (
            ("cost", r"about (\d+) objects"),
            ("depth", r"depth (\d+)"),
            ("aliases", r"uses (\d+) aliases"),
        ):
            if m := re.search(pattern, e.message):
                assert key not in out, "one operation expected"
                out[key] = int(m.group(1))
    return out


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ a }", 1),
        ("{ a b }", 2),
        ("{ a { b c } }", 3),
        ("{ a(first: 10) { b c } }", 21),
        ("{ a(first: 10) { b(first: 3) { c } } }", 41),  # 1 + 10 * (1 + 3 * 1)
        ("{ a(first: 0) { b } }", 2),  # at least one
        ("{ a(first: 9999) { b } }", 501),  # at most the cap
        ("query($n: Int) { a(first: $n) { b } }", 501),  # a variable is the cap
        ("{ a(last: 10) { b } }", 2),  # only `first` multiplies
        ("{ ... on Q { a b } }", 2),
        ("{ ...F } fragment F on Q { a(first: 2) { b } }", 3),
        ("{ x: a(first: 2) { ...G } y: a(first: 2) { ...G } } fragment G on T { b c }", 10),
        ("{ __typename a }", 2),
        ("{ __schema { types { name } } a }", 1),  # introspection is not counted
        ("{ ...A } fragment A on Q { ...B a } fragment B on Q { ...A b }", 2),  # a cycle ends
        ("{ ...Missing a }", 1),
    ],
)
def test_cost(query: str, cost: int) -> None:
    assert measured(query)["cost"] == cost


def test_the_cap_is_the_configured_one() -> None:
    assert measured("{ a(first: 9999) { b } }", max_first=20)["cost"] == 21


def test_depth_and_aliases() -> None:
    m = measured("{ x: a { y: b { c } } z: d }")
    assert (m["depth"], m["aliases"]) == (3, 3)
    m = measured("{ ...F ...F } fragment F on Q { k: a { b } }")
    assert (m["depth"], m["aliases"]) == (2, 2)


def test_each_operation_is_measured_on_its_own() -> None:
    doc = parse("query A { a(first: 100) { b } } query B { c(first: 100) { d } }")
    limits = Limits(max_cost=150)
    assert check_limits(doc, limits) == []  # 101 each, not 202
    errors = check_limits(doc, Limits(max_cost=100))
    assert [e.code for e in errors] == ["QUERY_TOO_COMPLEX"] * 2
