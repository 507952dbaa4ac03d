"""The ``Analytics`` root type, served by replicas (intent ``analytics``).

Must not: write SQL (``gateway.data.analytics``).
"""

from __future__ import annotations

import strawberry


@strawberry.type(description="Fleet analytics for BI tools; always served by read replicas.")
class Analytics:
    @strawberry.field(description="Placeholder until the analytics fields land.")
    def available(self) -> bool:
        return False
