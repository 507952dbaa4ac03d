"""Fixtures for the database integration tests: PgBouncer DSNs for the
gateway role (scratch databases are in ``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def gateway_dsns(stack: dict[str, Any]) -> dict[str, str]:
    d = stack["dsns"]
    return {
        k: str(d[k]) for k in ("gateway_primary", "gateway_primary_tx", "gateway_primary_tx_single")
    }
