"""How a planned statement writes one column as compact JSON text, exactly
as the resolver path serialises the value it reads from that column
(DateTime as Python's ``isoformat()`` in UTC, enums upper-case, numeric as
float8, floats as ``orjson`` prints them, Relay cursors as base64url of
compact JSON).

A column is written by a ``Codec``: the field that declares the column
(``gateway.api.plan.fields.column``) names the codec, or lets the planner
derive it from the field's GraphQL type. Templates are written over a row
alias ``{t}``, which ``column_text`` fills in.

Must not: know GraphQL names or types, choose a database node.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["aircraft", "flight"]

# id: a uuid; code: text the tables' check constraints hold to [A-Z0-9-]
# (written unescaped); text, json: any value, escaped by ``to_json``; enum: a
# lower-case label written upper-case; numeric: written as float8 by
# ``to_json``; float: a float8 written as ``orjson`` writes it.
Codec = Literal[
    "id", "code", "text", "json", "enum", "int", "numeric", "float", "timestamp", "date"
]


def timestamp(expr: str) -> str:
    """``datetime.isoformat()`` of a timestamptz in UTC: microseconds only
    when non-zero; NULL stays NULL."""
    # one to_char whose format is chosen per value: cheaper than gluing parts
    return (
        f"to_char(({expr} at time zone 'UTC'), case when date_trunc('second', {expr}) = {expr}"
        ' then \'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\''
        ' else \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\' end)'
    )


def _base64url(text_expr: str) -> str:
    # PostgreSQL's base64 wraps lines and uses +/; cursors are unpadded base64url.
    return (
        f"rtrim(translate(encode(convert_to({text_expr}, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"
    )


def cursor(kind: Kind, t: str) -> str:
    """``gateway.api.cursors.aircraft_cursor`` / ``flight_cursor`` in SQL,
    as JSON text (base64url needs no escaping). Registrations are
    ``[A-Z0-9-]`` only (a check constraint), so ``to_json`` escapes them as
    Python's ``json.dumps`` does."""
    if kind == "aircraft":
        key = f"to_json({t}.registration)::text || ',\"' || {t}.id::text || '\"'"
    else:
        key = f"'\"' || {timestamp(f'{t}.departed_at')} || '\",\"' || {t}.id::text || '\"'"
    return (
        "'\"' || " + _base64url(f'\'{{"v":1,"t":"{kind}","k":[\' || {key} || \']}}\'') + " || '\"'"
    )


def json_text(expr: str) -> str:
    """JSON text of any value exactly as ``json_build_object`` would write
    it (``to_json``), ``null`` for NULL."""
    return f"coalesce(to_json({expr})::text, 'null')"


def string_text(expr: str) -> str:
    """JSON text of a value whose text needs no escaping (uuids, upper-case
    enum labels, dates, timestamps, and the codes the tables' check
    constraints hold to ``[A-Z0-9-]``), ``null`` for NULL."""
    return f"coalesce('\"' || {expr} || '\"', 'null')"


def int_text(expr: str) -> str:
    return f"coalesce(({expr})::text, 'null')"


def float_text(expr: str) -> str:
    """JSON text of a float8 exactly as ``orjson`` writes the Python float
    asyncpg hands the resolvers: a ``.0`` on integral values, plain decimals
    for decimal exponents -5..15, else ``1.5e-7`` / ``1e+16`` style. PostgreSQL
    prints the same shortest digits (``extra_float_digits`` > 0, checked by
    the statement) but switches to exponents at -5 and 15: zero and
    magnitudes in [1e-4, 1e15) are written here, the rest by
    ``dbx_analytics.json_float_rare`` (migration 0011; the expression
    PostgreSQL sets up per execution stays small). Non-finite values and
    magnitudes from 1e16 (where PostgreSQL prints integral values with more
    digits than the shortest) fail the statement: the resolvers answer."""
    v = f"({expr})"
    plain = f"case when {v} = trunc({v}) then {v}::text || '.0' else {v}::text end"
    # NULL, NaN and the infinities all fail the first test
    return (
        f"case when {v} = 0 or (abs({v}) >= 1e-4 and abs({v}) < 1e15) then {plain}"
        f" when {v} is null then 'null'"
        f" else dbx_analytics.json_float_rare({v}) end"
    )


def value_text(codec: Codec, column: str) -> str:
    """The JSON text template of ``column`` (an expression over the row
    alias, e.g. ``pct[1]``) of a row aliased ``{t}``."""
    c = "{t}." + column
    if codec == "id":
        return string_text(f"{c}::text")
    if codec == "code":
        return string_text(c)
    if codec in ("text", "json"):
        return json_text(c)
    if codec == "enum":
        return string_text(f"upper({c})")
    if codec == "int":
        return int_text(c)
    if codec == "numeric":
        return json_text(f"{c}::float8")
    if codec == "float":
        return float_text(c)
    if codec == "timestamp":
        return string_text(timestamp(c))
    return string_text(f"to_char({c}, 'YYYY-MM-DD')")


def column_text(template: str, t: str) -> str:
    """A ``value_text`` template over the row alias ``t``."""
    return template.replace("{t}", t)
