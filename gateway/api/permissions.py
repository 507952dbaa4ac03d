"""Role checks as Strawberry permission classes: ``viewer`` reads,
``analyst`` also reads analytics, ``operator`` also writes, ``admin`` all.
A refusal is ``FORBIDDEN``.

Must not: write SQL.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from gateway.errors import Forbidden


class _RolePermission(BasePermission):
    permission = ""
    message = "Not allowed"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = getattr(info.context, "principal", None)
        return principal is not None and bool(principal.can(self.permission))

    def on_unauthorized(self) -> None:
        raise Forbidden(f"Your role does not allow '{self.permission}'")


class CanRead(_RolePermission):
    permission = "read"


class CanWrite(_RolePermission):
    permission = "write"


class CanAnalytics(_RolePermission):
    permission = "analytics"
