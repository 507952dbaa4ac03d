"""``migrate`` against a scratch database: a second run changes nothing, and an
applied migration that was edited afterwards is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from gateway.admin.migrate import MIGRATIONS_DIR, MigrationError, migrate
from tests.support.orgs import ScratchFactory

SCHEMA_FINGERPRINT = """
select md5(string_agg(format('%s.%s:%s', n.nspname, c.relname, c.relkind), ','
                      order by n.nspname, c.relname))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname like 'dbx\\_%' or (n.nspname = 'public' and c.relname = 'dbx_schema_migrations')
"""


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def fingerprint(dsn: str) -> tuple[str, list[tuple[int, str, str]]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select version, checksum, applied_at::text from public.dbx_schema_migrations "
            "order by version"
        )
        return await conn.fetchval(SCHEMA_FINGERPRINT), [tuple(r) for r in rows]
    finally:
        await conn.close()


async def test_migrate_twice_applies_everything_once_then_changes_nothing(
    scratch_db: ScratchFactory, migrations_copy: Path
) -> None:
    names = sorted(p.name for p in migrations_copy.glob("*.sql"))  # noqa: ASYNC240
    dsn = await scratch_db()
    first = await migrate(dsn, migrations_copy)
    assert first == names
    before = await fingerprint(dsn)
    assert await migrate(dsn, migrations_copy) == []
    assert await fingerprint(dsn) == before


async def test_modified_applied_migration_is_refused(
    scratch_db: ScratchFactory, migrations_copy: Path
) -> None:
    dsn = await scratch_db()
    await migrate(dsn, migrations_copy)
    before = await fingerprint(dsn)
    applied = sorted(migrations_copy.glob("*.sql"))[1]  # noqa: ASYNC240
    applied.write_text(applied.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError) as err:
        await migrate(dsn, migrations_copy)
    assert applied.name in str(err.value)
    assert "add a new migration" in str(err.value)
    assert await fingerprint(dsn) == before
