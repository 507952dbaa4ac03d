"""Client-facing GraphQL errors: every error gets ``extensions.code``;
``GatewayError`` keeps its safe message, request-level GraphQL errors
(variables, coercion) are ``BAD_USER_INPUT``, anything else is masked as
``INTERNAL_SERVER_ERROR``. Also the HTTP status an execution result maps to.

Must not: write SQL; never put driver messages, SQL or tracebacks in output.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from gateway.errors import BadUserInput, GatewayError, InternalError

HINT = "Did you mean "
# Domain outcomes a client reads from the body; the HTTP exchange itself worked.
BODY_ONLY_CODES = frozenset({"NOT_FOUND", "CONFLICT"})


def gateway_error_json(err: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    ext = err.to_extensions()
    if isinstance(err, InternalError) and request_id:
        ext["requestId"] = request_id
    return {"message": err.message, "extensions": ext}


def strip_suggestions(text: str) -> str:
    """``text`` without its "Did you mean ...?" hints and the blanks before
    each, in one pass: messages quote user input (a token, a variable's
    value), and a regular expression with a leading ``\\s*`` backtracks
    quadratically over a long run of whitespace."""
    out: list[str] = []
    pos = 0
    while (start := text.find(HINT, pos)) >= 0:
        end = text.find("?", start + len(HINT))
        if end < 0:
            break  # no hint ends after this point, so none starts later either
        out.append(text[pos:start].rstrip())
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)


def classify(err: GraphQLError) -> GatewayError:
    orig = err.original_error
    if isinstance(orig, GatewayError):
        return orig
    if orig is None:
        # request errors: validation, unknown operation, variable coercion
        return BadUserInput(err.message)
    if err.path is None and isinstance(orig, ValueError | TypeError | GraphQLError):
        # a scalar refusing a variable's value while it is coerced
        return BadUserInput(err.message)
    return InternalError()


def format_error(err: GraphQLError, request_id: str, *, prod: bool) -> dict[str, Any]:
    gw = classify(err)
    out = gateway_error_json(gw, request_id)
    if prod:
        out["message"] = strip_suggestions(out["message"])
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    if err.path:
        out["path"] = list(err.path)
    return out


def status_for(errors: list[dict[str, Any]], data: Any) -> int:
    """200 when any root field produced data; otherwise the status of the
    errors' code (503 when UNAVAILABLE is the only one)."""
    if not errors:
        return 200
    codes = {e["extensions"]["code"] for e in errors}
    if codes == {"UNAVAILABLE"}:
        return 503
    if isinstance(data, dict) and any(v is not None for v in data.values()):
        return 200
    code = errors[0]["extensions"]["code"]
    if code in BODY_ONLY_CODES:
        return 200
    return {
        "UNAUTHENTICATED": 401,
        "FORBIDDEN": 403,
        "BAD_USER_INPUT": 400,
        "QUERY_TOO_COMPLEX": 400,
        "TIMEOUT": 504,
        "UNAVAILABLE": 503,
        "CLIENT_CLOSED_REQUEST": 499,
    }.get(code, 500)
