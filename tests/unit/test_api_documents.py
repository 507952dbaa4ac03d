"""Document checks without a database: limits, prod rules, cursors."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.api import cursors
from gateway.api.documents import DocumentCache
from gateway.api.schema import build_schema
from gateway.api.telemetry_points import validate_point
from gateway.config import Limits
from gateway.errors import BadUserInput, QueryTooComplex


def cache(prod: bool = False, **limits: int) -> DocumentCache:
    return DocumentCache(build_schema()._schema, Limits(**limits), prod=prod)


def test_valid_query_is_prepared_and_cached() -> None:
    c = cache()
    p = c.get("{ viewer { orgId } }")
    assert p.document is not None and not p.errors
    assert c.get("{ viewer { orgId } }") is p


def test_depth_counts_through_fragments() -> None:
    q = "{ fleet { edges { node { ...F } } } } fragment F on Aircraft { latestFlight { aircraft { id } } }"  # noqa: E501 - GraphQL literal
    assert not cache(max_depth=6).get(q).errors
    errors = cache(max_depth=5).get(q).errors
    assert errors and isinstance(errors[0], QueryTooComplex)


def test_aliases_multiply_through_spreads_and_cycles_do_not_hang() -> None:
    q = "{ viewer { ...F ...F ...F } } fragment F on Viewer { a: orgId b: orgId }"
    assert isinstance(cache(max_aliases=5).get(q).errors[0], QueryTooComplex)
    cyc = "{ viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { ...A }"
    assert isinstance(cache().get(cyc).errors[0], BadUserInput)


def test_prod_hides_introspection_and_suggestions() -> None:
    prod = cache(prod=True)
    e = prod.get("{ __schema { types { name } } }").errors
    assert e and e[0].extensions.get("reason") == "INTROSPECTION_DISABLED"
    e = prod.get("{ fleeet { totalCount } }").errors
    assert e and "Did you mean" not in e[0].message
    assert "Did you mean" in cache().get("{ fleeet { totalCount } }").errors[0].message


def test_token_limit() -> None:
    e = cache(max_tokens=50).get("{ viewer { " + "orgId " * 60 + "} }").errors
    assert isinstance(e[0], QueryTooComplex)


def test_comments_count_as_tokens() -> None:
    """A document padded with comments is refused at the token limit, not
    lexed and parsed to its end (450,000 comments took 3.8 s to parse)."""
    padded = "{ viewer { orgId " + "#\n" * 450_000 + "} }"
    e = cache(max_tokens=4000).get(padded).errors
    assert isinstance(e[0], QueryTooComplex)
    assert not cache(max_tokens=10).get("# one\n{ viewer { orgId } } # two").errors


@given(st.text(max_size=200))
def test_forged_cursors_are_bad_input(text: str) -> None:
    try:
        key = cursors.parse_aircraft_cursor(text)
    except BadUserInput:
        return  # anything else (a crash) fails the test
    assert key is not None and isinstance(key[1], uuid.UUID)


def test_cursor_round_trip() -> None:
    i = uuid.uuid4()
    assert cursors.parse_aircraft_cursor(cursors.aircraft_cursor("N1", i)) == ("N1", i)
    with pytest.raises(BadUserInput):
        cursors.parse_flight_cursor(cursors.aircraft_cursor("N1", i))


NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_point_altitude_validation(x: float) -> None:
    out = validate_point({"recordedAt": "2026-05-01T00:00:00Z", "altitudeM": x}, NOW, 900)
    ok = x == x and abs(x) != float("inf") and -500 <= x <= 20000
    assert isinstance(out, tuple) == ok


def test_point_time_validation() -> None:
    assert isinstance(validate_point({"recordedAt": "1969-12-31T00:00:00Z"}, NOW, 900), str)
    assert isinstance(validate_point({"recordedAt": "2026-06-01T00:10:00Z"}, NOW, 900), tuple)
    assert isinstance(validate_point({"recordedAt": "2026-06-01T00:20:00Z"}, NOW, 900), str)
    assert isinstance(validate_point({"recordedAt": "x"}, NOW, 900), str)
    assert isinstance(validate_point({"recordedAt": "2026-05-01T00:00:00Z", "x": 1}, NOW, 900), str)
    assert isinstance(validate_point([1, 2], NOW, 900), str)


def test_cost_multiplies_nested_pages_and_refuses_above_the_cap() -> None:
    from graphql import parse

    from gateway.api.documents import check_limits
    from gateway.config import Limits

    limits = Limits(max_cost=50_000, max_first=500)
    wide = (
        "{ fleet(first: 500) { edges { node { flights(first: 500) { edges { node { id } } } } } } }"
    )
    narrow = (
        "{ fleet(first: 50) { edges { node { flights(first: 5) { edges { node { id } } } } } } }"
    )
    variables = (
        "query($n: Int) { fleet(first: $n) { edges { node {"
        " flights(first: $n) { totalCount } } } } }"
    )
    assert [e.code for e in check_limits(parse(wide), limits)] == ["QUERY_TOO_COMPLEX"]
    assert check_limits(parse(narrow), limits) == []
    # a variable counts as the page cap
    assert [e.code for e in check_limits(parse(variables), limits)] == ["QUERY_TOO_COMPLEX"]
