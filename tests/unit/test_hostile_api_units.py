"""Pure parts of the hostile-client fixes of the GraphQL layer: hint
stripping in linear time, the byte-bounded document cache, the one
mutation field rule, the DateTime range."""

from __future__ import annotations

import time

import pytest
from graphql import parse

from gateway.api.documents import DocumentCache, mutation_fields
from gateway.api.errors import strip_suggestions
from gateway.api.scalars import parse_datetime
from gateway.api.schema import build_schema
from gateway.config import Limits


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        (
            "Cannot query field 'x' on type 'Query'. Did you mean 'y'?",
            "Cannot query field 'x' on type 'Query'.",
        ),
        ("a  Did you mean 'b' or 'c'? d Did you mean 'e'? f", "a d f"),
        ("no hint here", "no hint here"),
        ("Did you mean without an end", "Did you mean without an end"),
    ],
)
def test_strip_suggestions(text: str, stripped: str) -> None:
    assert strip_suggestions(text) == stripped


def test_strip_suggestions_is_linear_over_whitespace() -> None:
    text = "found String '" + " " * 1_000_000 + "'. Did you mean " * 50_000
    started = time.perf_counter()
    out = strip_suggestions(text)
    # linear takes milliseconds; a quadratic scan of 1e6 spaces would take hours
    assert time.perf_counter() - started < 5.0
    assert out.endswith("Did you mean ")  # the unterminated tail is kept as it is


def _cache(**limits: int) -> DocumentCache:
    return DocumentCache(build_schema()._schema, Limits(**limits), prod=True)


def test_document_cache_is_bounded_by_bytes() -> None:
    cache = _cache(cache_bytes=2_000_000)
    for i in range(20):
        cache.get("{ fleet { totalCount } }" + f"# {i}\n" + " " * 300_000)
    assert cache._bytes <= 2_000_000 and len(cache._entries) <= 6
    assert all(isinstance(k, bytes) and len(k) == 16 for k in cache._entries)


def test_document_heavier_than_the_budget_is_not_kept() -> None:
    cache = _cache(cache_bytes=100_000)
    prepared = cache.get("{ fleet { totalCount } }" + " " * 200_000)
    assert not prepared.errors and not cache._entries


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("mutation { createAircraft(input: {}) { id } }", 1),
        ("mutation { __typename createAircraft(input: {}) { id } }", 1),
        ("mutation { a: createAircraft(input: {}) { id } b: createAircraft(input: {}) { id } }", 2),
        ("mutation { ...F } fragment F on Mutation { x { id } ... on Mutation { y { id } } }", 2),
        ("mutation { x { id } x { version } }", 1),  # one response key: one execution
        ("{ a: fleet { totalCount } b: fleet { totalCount } }", 0),
    ],
)
def test_mutation_fields(query: str, fields: int) -> None:
    assert mutation_fields(parse(query)) == fields


def test_two_mutation_fields_are_refused_before_execution() -> None:
    q = (
        'mutation { a: completeFlight(id: "1", arrivedAt: "2026-01-01T00:00:00Z") { id }'
        ' b: completeFlight(id: "2", arrivedAt: "2026-01-01T00:00:00Z") { id } }'
    )
    prepared = _cache().get(q)
    assert prepared.document is None
    assert [e.code for e in prepared.errors] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-05T00:00:00+00:00",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "0001-06-01T00:00:00",
        "9999-01-01T00:00:00Z",
    ],
)
def test_datetime_outside_the_range_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="between 0002-01-01 and 9998-12-31"):
        parse_datetime(value)


@pytest.mark.parametrize(
    "value", ["0002-01-01T00:00:00Z", "0001-12-31T23:30:00-01:00", "9998-12-31T23:59:59+00:00"]
)
def test_datetime_inside_the_range_is_kept(value: str) -> None:
    assert parse_datetime(value).isoformat()
