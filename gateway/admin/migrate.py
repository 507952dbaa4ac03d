"""``dbx-gateway migrate``: apply ``schema/migrations/NNNN_*.sql`` in order,
once each, under an advisory lock, recording each file's checksum. An applied
file that changed is refused: add a new migration instead.

Must not: run as the gateway role.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from gateway.config import REPO_ROOT

MIGRATIONS_DIR = REPO_ROOT / "schema" / "migrations"
LOCK_KEY = 0x6462785F6D696772  # "dbx_migr"
NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration cannot be applied as asked."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = NAME_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    migrations = load_migrations(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("select pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute(
                """
                create table if not exists public.dbx_schema_migrations (
                    version integer primary key,
                    name text not null,
                    checksum text not null,
                    applied_at timestamptz not null default now()
                )
                """
            )
            applied = {
                r["version"]: r
                for r in await conn.fetch(
                    "select version, name, checksum from public.dbx_schema_migrations"
                )
            }
            done: list[str] = []
            for mig in migrations:
                prior = applied.get(mig.version)
                if prior is not None:
                    if prior["checksum"] != mig.checksum:
                        raise MigrationError(
                            f"{mig.name} was changed after it was applied "
                            f"(recorded checksum {prior['checksum'][:12]}, "
                            f"file {mig.checksum[:12]}); "
                            "applied migrations are immutable: add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "insert into public.dbx_schema_migrations (version, name, checksum) "
                        "values ($1, $2, $3)",
                        mig.version,
                        mig.name,
                        mig.checksum,
                    )
                done.append(mig.name)
            return done
        finally:
            await conn.execute("select pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()
