"""asyncpg pools and how they talk to PgBouncer.

PgBouncer 1.18 in transaction mode cannot keep named prepared statements, so a
pool pointed at such a database must run with asyncpg's statement cache off.
``detect_transaction_pooling`` finds out by watching backend pids: in session
mode each client connection keeps its server connection, in transaction mode
two client connections end up sharing one (PgBouncer reuses the most recently
released server first). Session mode never shows that, so a positive answer
is certain; a negative one is repeated a few times to be sure.

Must not: know table names or choose nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

STATEMENT_CACHE_SIZE = 512


def split_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    """Remove the gateway's own DSN options (``dbx_*``) and return them apart;
    asyncpg would send unknown options to the server as settings."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k[4:]: v for k, v in query if k.startswith("dbx_")}
    rest = [(k, v) for k, v in query if not k.startswith("dbx_")]
    return urlunsplit(parts._replace(query=urlencode(rest))), own


def redact_dsn(dsn: str) -> str:
    """``dsn`` without its password, for logs, spans and /readyz."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: the gateway never sets session state (tenant settings
    are transaction-local), so the default reset's round trip
    (``RESET ALL; CLOSE ALL; ...``) is skipped. An open transaction is still
    rolled back by asyncpg before this runs."""


async def detect_transaction_pooling(dsn: str, *, timeout: float, rounds: int = 4) -> bool:
    """True when ``dsn`` is served by a transaction-pooling PgBouncer."""
    a = await asyncpg.connect(dsn, timeout=timeout, statement_cache_size=0)
    try:
        b = await asyncpg.connect(dsn, timeout=timeout, statement_cache_size=0)
        try:
            for _ in range(rounds):
                pid_a1 = await a.fetchval("select pg_backend_pid()")
                pid_b = await b.fetchval("select pg_backend_pid()")
                pid_a2 = await a.fetchval("select pg_backend_pid()")
                if pid_a1 != pid_a2 or pid_b in (pid_a1, pid_a2):
                    return True
        finally:
            await b.close(timeout=timeout)
    finally:
        await a.close(timeout=timeout)
    return False


async def create_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    statement_cache: bool,
    connect_timeout: float,
    application_name: str = "dbx-gateway",
) -> asyncpg.Pool:
    kwargs: dict[str, Any] = {
        "min_size": min_size,
        "max_size": max_size,
        "statement_cache_size": STATEMENT_CACHE_SIZE if statement_cache else 0,
        "max_inactive_connection_lifetime": 60.0,
        "timeout": connect_timeout,
        "reset": _keep_session,
        "server_settings": {"application_name": application_name},
    }
    pool = asyncpg.create_pool(dsn, **kwargs)
    try:
        return await asyncio.wait_for(pool, timeout=connect_timeout * 3)
    except BaseException:
        pool.terminate()
        raise
