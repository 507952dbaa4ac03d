"""Database access: one asyncpg pool per node, node health, the router, and
the tenant transaction every query runs in.

Must not: know any table name (SQL text lives in ``gateway.data``).
"""

from __future__ import annotations

from gateway.db.database import Database, Intent, TenantContext
from gateway.db.nodes import Node

__all__ = ["Database", "Intent", "Node", "TenantContext"]
