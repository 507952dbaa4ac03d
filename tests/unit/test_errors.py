"""``classify_db_error``: every driver error becomes a client-safe
``GatewayError`` chosen by its SQLSTATE (the class asyncpg makes for it),
never by its message; ``is_connection_error`` tells a dead node from a
failed query."""

from __future__ import annotations

import asyncpg
import pytest

from gateway.errors import (
    ERROR_CODES,
    BadUserInput,
    Conflict,
    Forbidden,
    NotFound,
    Timeout,
    classify_db_error,
    is_connection_error,
)

# what the server said, with names a client must never see
DETAIL = 'relation "dbx_aviation.aircraft" at /srv/secret: value "x" violates'


def pg(sqlstate: str) -> BaseException:
    """The exception asyncpg raises for a server error with this SQLSTATE."""
    return asyncpg.exceptions.PostgresError.new({"C": sqlstate, "M": DETAIL, "S": "ERROR"})


@pytest.mark.parametrize(
    ("sqlstate", "code"),
    [
        ("57014", "TIMEOUT"),  # statement_timeout
        ("40001", "CONFLICT"),  # serialization failure
        ("40P01", "CONFLICT"),  # deadlock
        ("23505", "CONFLICT"),  # unique violation
        ("23503", "NOT_FOUND"),  # foreign key violation
        ("23514", "BAD_USER_INPUT"),  # check violation
        ("23502", "BAD_USER_INPUT"),  # not null violation
        ("42501", "FORBIDDEN"),  # insufficient privilege, row-level security
        ("22P02", "BAD_USER_INPUT"),  # invalid text representation
        ("22003", "BAD_USER_INPUT"),  # numeric value out of range
        ("22001", "BAD_USER_INPUT"),  # string data right truncation
        ("22021", "BAD_USER_INPUT"),  # character not in repertoire
        ("22P05", "BAD_USER_INPUT"),  # untranslatable character
        ("22008", "BAD_USER_INPUT"),  # datetime field overflow
        ("22007", "BAD_USER_INPUT"),  # invalid datetime format
        ("25006", "UNAVAILABLE"),  # read-only transaction: not the primary any more
        ("57P01", "UNAVAILABLE"),  # admin shutdown
        ("57P02", "UNAVAILABLE"),  # crash shutdown
        ("57P03", "UNAVAILABLE"),  # cannot connect now
        ("53300", "UNAVAILABLE"),  # too many connections
        ("08006", "UNAVAILABLE"),  # connection failure
        ("08P01", "UNAVAILABLE"),  # protocol violation (PgBouncer)
        ("42P01", "INTERNAL_SERVER_ERROR"),  # undefined table: the gateway's bug
        ("42601", "INTERNAL_SERVER_ERROR"),  # syntax error
        ("XX000", "INTERNAL_SERVER_ERROR"),  # internal error
    ],
)
def test_sqlstate_decides_the_code_and_no_driver_text_leaks(sqlstate: str, code: str) -> None:
    err = classify_db_error(pg(sqlstate))
    assert (err.code, err.to_extensions()) == (code, {"code": code})
    assert "dbx_aviation" not in err.message and "secret" not in err.message
    assert err.http_status == {c.code: c.http_status for c in ERROR_CODES}[code]


def test_the_same_text_under_another_sqlstate_is_another_code() -> None:
    """The message is never read: a unique violation's text under a check
    violation's SQLSTATE is a check violation."""
    text = 'duplicate key value violates unique constraint "aircraft_registration_key"'
    err = asyncpg.exceptions.PostgresError.new({"C": "23514", "M": text, "S": "ERROR"})
    assert isinstance(classify_db_error(err), BadUserInput)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TimeoutError(), "UNAVAILABLE"),  # a pool or connect wait
        (ConnectionResetError(), "UNAVAILABLE"),
        (OSError("connection refused"), "UNAVAILABLE"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), "UNAVAILABLE"),
        (asyncpg.exceptions.InternalClientError("protocol state"), "UNAVAILABLE"),
        (asyncpg.exceptions.InterfaceError("the connection is closed"), "UNAVAILABLE"),
        (
            asyncpg.exceptions.InterfaceError("another operation is in progress"),
            "INTERNAL_SERVER_ERROR",
        ),
        (ValueError("a bug"), "INTERNAL_SERVER_ERROR"),
    ],
)
def test_errors_without_a_sqlstate(exc: BaseException, code: str) -> None:
    assert classify_db_error(exc).code == code


def test_a_gateway_error_passes_through_unchanged() -> None:
    for err in (Timeout(), Conflict("x"), NotFound(), Forbidden(), BadUserInput("y")):
        assert classify_db_error(err) is err


@pytest.mark.parametrize(
    ("exc", "dead"),
    [
        (asyncpg.exceptions.ConnectionDoesNotExistError("x"), True),
        (
            asyncpg.exceptions.InterfaceError(
                "cannot call Connection.fetch(): connection is closed"
            ),
            True,
        ),
        (asyncpg.exceptions.InterfaceError("another operation is in progress"), False),
        (ConnectionRefusedError(), True),
        (pg("57P01"), True),
        (pg("08006"), True),
        (pg("57014"), False),  # the query timed out; the node is fine
        (pg("23505"), False),
        (pg("40001"), False),
    ],
)
def test_connection_errors_are_the_node_not_the_query(exc: BaseException, dead: bool) -> None:
    assert is_connection_error(exc) is dead
