"""The gateway's error codes: one ``GatewayError`` family, each class knowing
its ``extensions.code`` and HTTP status, and the one table that turns asyncpg
(SQLSTATE) errors into them.

Must not: run SQL, or put SQL text, table names or driver messages in any
message a client can see.
"""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg


class GatewayError(Exception):
    """An error a client may see: a stable code and a message safe to show."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal server error"

    def __init__(self, message: str | None = None, **extensions: Any) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.extensions = extensions

    def to_extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.extensions}


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"
    http_status = 401
    default_message = "Authentication required"


class Forbidden(GatewayError):
    code = "FORBIDDEN"
    http_status = 403
    default_message = "Not allowed"


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"
    http_status = 400
    default_message = "Invalid input"


class NotFound(GatewayError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = "Not found"


class Conflict(GatewayError):
    code = "CONFLICT"
    http_status = 409
    default_message = "The object was changed by someone else"


class QueryTooComplex(GatewayError):
    code = "QUERY_TOO_COMPLEX"
    http_status = 400
    default_message = "Query too complex"


class Timeout(GatewayError):
    code = "TIMEOUT"
    http_status = 504
    default_message = "The operation took too long"


class Unavailable(GatewayError):
    code = "UNAVAILABLE"
    http_status = 503
    default_message = "No database may serve this request now; retry later"


class ClientClosedRequest(GatewayError):
    """The client went away while the request waited: its work was dropped.
    Nobody reads the answer; the code shows in logs, metrics and traces."""

    code = "CLIENT_CLOSED_REQUEST"
    http_status = 499
    default_message = "The client closed the connection before the answer was ready"


class InternalError(GatewayError):
    code = "INTERNAL_SERVER_ERROR"
    http_status = 500


ERROR_CODES: tuple[type[GatewayError], ...] = (
    Unauthenticated,
    Forbidden,
    BadUserInput,
    NotFound,
    Conflict,
    QueryTooComplex,
    Timeout,
    Unavailable,
    ClientClosedRequest,
    InternalError,
)

# Connection-level failures: the node (or PgBouncer in front of it) is gone or
# refusing. Idempotent reads may retry these once on another node.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,  # class 08
    asyncpg.exceptions.CannotConnectNowError,  # 57P03
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    asyncpg.exceptions.PostgresConnectionError,  # class 08, e.g. PgBouncer's 08P01
    asyncpg.exceptions.InterfaceError,
    # the protocol state broke along with the connection
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
    OSError,
)

# A statement prepared on one server connection was looked for on another:
# PgBouncer in transaction mode. Safe to retry with the statement cache off
# because the transaction was aborted before anything committed.
PREPARED_STATEMENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.InvalidSQLStatementNameError,  # 26000
    asyncpg.exceptions.DuplicatePreparedStatementError,  # 42P05
)


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection or node failed, not the query."""
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and not isinstance(
        exc, asyncpg.exceptions.ConnectionDoesNotExistError
    ):
        # "cannot perform operation: another operation is in progress" and the
        # like are programming errors, not a dead node.
        return "connection" in str(exc).lower() and "closed" in str(exc).lower()
    return isinstance(exc, CONNECTION_ERRORS)


def classify_db_error(exc: BaseException) -> GatewayError:
    """Map a driver error to a client-safe ``GatewayError`` by its class
    (SQLSTATE), never by message text."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):  # 57014 statement_timeout
        return Timeout()
    if isinstance(
        exc, asyncpg.exceptions.SerializationError | asyncpg.exceptions.DeadlockDetectedError
    ):
        return Conflict("The operation conflicted with a concurrent one; retry it")
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return Conflict("An object with the same unique key already exists")
    if isinstance(exc, asyncpg.exceptions.ForeignKeyViolationError):
        return NotFound("A referenced object does not exist")
    if isinstance(exc, asyncpg.exceptions.CheckViolationError):
        return BadUserInput("A value is outside its allowed range or format")
    if isinstance(exc, asyncpg.exceptions.NotNullViolationError):
        return BadUserInput("A required value is missing")
    if isinstance(exc, asyncpg.exceptions.InsufficientPrivilegeError):
        # 42501: includes "new row violates row-level security policy"
        return Forbidden()
    if isinstance(
        exc,
        asyncpg.exceptions.InvalidTextRepresentationError
        | asyncpg.exceptions.NumericValueOutOfRangeError
        | asyncpg.exceptions.StringDataRightTruncationError
        | asyncpg.exceptions.CharacterNotInRepertoireError
        | asyncpg.exceptions.UntranslatableCharacterError
        | asyncpg.exceptions.DatetimeFieldOverflowError
        | asyncpg.exceptions.InvalidDatetimeFormatError,
    ):
        return BadUserInput("A value has an invalid format")
    if isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
        return Unavailable("The primary is not accepting writes now")
    if is_connection_error(exc) or isinstance(exc, TimeoutError):
        return Unavailable()
    return InternalError()
