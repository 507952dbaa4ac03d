"""Fixtures over the real local stack (``deploy/local/stack``): no mocks.

Tests create their own organizations with unique slugs and never delete
other tests' data, so suites can run against a shared, seeded database.
Scratch databases (``scratch_db``) are created by the stack's superuser,
owned by dbx_owner, and dropped at the end; their names are quoted by the
server (``format('%I')``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.config import Settings
from tests.support.orgs import OrgFactory, ScratchFactory

# The suite runs with issuer and audience checks on (inherited by every app it
# serves), so wrong-`iss` and wrong-`aud` tokens are really refused.
os.environ.setdefault("DBX_JWT_ISSUER", "https://auth.dbx.test")
os.environ.setdefault("DBX_JWT_AUDIENCE", "dbx-gateway")

REPO = Path(__file__).resolve().parent.parent
STACK = REPO / "deploy" / "local" / "stack"


def stack_status() -> dict[str, Any]:
    out = subprocess.run(
        [str(STACK), "status", "--json"], check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def stack() -> dict[str, Any]:
    return stack_status()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env(dict(os.environ))


@pytest.fixture(scope="session")
def owner_dsn(settings: Settings) -> str:
    return settings.owner_dsn


@pytest.fixture
async def owner_conn(owner_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def make_org(owner_dsn: str) -> OrgFactory:
    """Create an organization with a unique slug; returns its id."""

    async def create(kind: str = "airline", name: str | None = None) -> uuid.UUID:
        slug = f"t-{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(owner_dsn)
        try:
            value = await conn.fetchval(
                "insert into dbx_aviation.organizations (name, slug, kind) "
                "values ($1, $2, $3) returning id",
                name or f"Test org {slug}",
                slug,
                kind,
            )
        finally:
            await conn.close()
        assert isinstance(value, uuid.UUID)
        return value

    return create


class NodeControl:
    """Stops and starts stack nodes for fault injection; whatever a test
    breaks is repaired at teardown, even when the test fails."""

    def __init__(self, stack: dict[str, Any]) -> None:
        self.stack = stack
        self.stopped: set[str] = set()
        self.paused: set[str] = set()

    def admin_dsn(self, name: str) -> str:
        for node in self.stack["nodes"]:
            if node["name"] == name:
                return str(node["admin_dsn"])
        raise KeyError(name)

    # In a thread: the gateway's event loop under test keeps running while a
    # node stops or starts, as it would in a real outage (a blocking call here
    # froze it for seconds, so every probe of every node timed out at once).
    async def stop(self, name: str) -> None:
        self.stopped.add(name)
        argv = [str(STACK), "stop", name]
        await asyncio.to_thread(subprocess.run, argv, check=True, capture_output=True, timeout=120)

    async def start(self, name: str) -> None:
        argv = [str(STACK), "start", name]
        await asyncio.to_thread(subprocess.run, argv, check=True, capture_output=True, timeout=180)
        self.stopped.discard(name)

    async def pause_replay(self, name: str) -> None:
        self.paused.add(name)
        conn = await asyncpg.connect(self.admin_dsn(name))
        try:
            await conn.execute("select pg_wal_replay_pause()")
        finally:
            await conn.close()

    async def resume_replay(self, name: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn(name))
        try:
            await conn.execute("select pg_wal_replay_resume()")
        finally:
            await conn.close()
        self.paused.discard(name)

    async def restore(self) -> None:
        # the primary first, so replicas can stream again
        for name in sorted(self.stopped, key=lambda n: n != "primary"):
            await self.start(name)
        for name in list(self.paused):
            await self.resume_replay(name)


@pytest.fixture
async def nodes(stack: dict[str, Any]) -> AsyncIterator[NodeControl]:
    control = NodeControl(stack)
    try:
        yield control
    finally:
        await control.restore()


@pytest.fixture(scope="session")
def admin_dsn(stack: dict[str, Any]) -> str:
    return str(stack["nodes"][0]["admin_dsn"])


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture
async def scratch_db(admin_dsn: str, owner_dsn: str) -> AsyncIterator[ScratchFactory]:
    """Creates empty databases owned by dbx_owner; returns each one's owner DSN."""
    made: list[str] = []

    async def create() -> str:
        name = f"dbx_scratch_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(admin_dsn)
        try:
            sql = await conn.fetchval(
                "select format('create database %I owner dbx_owner', $1::text)", name
            )
            await conn.execute(sql)
        finally:
            await conn.close()
        made.append(name)
        return with_database(owner_dsn, name)

    yield create
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in made:
            sql = await conn.fetchval(
                "select format('drop database if exists %I with (force)', $1::text)", name
            )
            await conn.execute(sql)
    finally:
        await conn.close()
