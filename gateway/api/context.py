"""The per-request GraphQL context: who asks, their database session, their
loaders. Built fresh for every request; never shared between requests, so
one tenant's loader cache can never answer another's.

Must not: write SQL or open connections (``gateway.data`` and ``gateway.db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db.database import DbSession


@dataclass
class Context:
    principal: Principal
    db: DbSession  # .read(fn, ...), .analytics(fn, ...), async with .write() as conn
    settings: Settings
    request_id: str
    loaders: Any = None  # gateway.api.loaders.Loaders, built per request
    document: Any = None  # graphql DocumentNode already parsed, limit-checked, validated
    obs: Any = None  # gateway.observability.Observability, when the app has one
    extras: dict[str, Any] = field(default_factory=dict)
