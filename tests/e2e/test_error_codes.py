"""The two error codes no ordinary input produces: TIMEOUT (a statement
timeout fired) and INTERNAL_SERVER_ERROR (anything unexpected, masked)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import _served


@pytest.fixture(scope="module")
def impatient_gateway_url() -> Iterator[str]:
    """A gateway whose analytics statements may run 1 ms."""
    yield from _served({"DBX_ANALYTICS_TIMEOUT_MS": "1"})


async def test_statement_timeout_is_timeout(
    impatient_gateway_url: str, make_org: Any, token: Any
) -> None:
    org = await make_org()
    async with httpx.AsyncClient(base_url=impatient_gateway_url, timeout=30) as c:
        r = await c.post(
            "/graphql",
            json={"query": "{ analytics { fleetRiskProfile { score } } }"},
            headers={"authorization": f"Bearer {token(org, 'analyst')}"},
        )
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT", body
    assert r.status_code == 504
    assert "statement" not in r.text.lower() and "cancel" not in r.text.lower()


async def test_unexpected_exception_is_masked(
    client: httpx.AsyncClient, make_org: Any, token: Any
) -> None:
    org = await make_org()
    r = await client.post(
        "/graphql",
        json={"query": "query DbxTestCrash { viewer { orgId } }", "operationName": "DbxTestCrash"},
        headers={"authorization": f"Bearer {token(org, 'viewer')}", "x-request-id": "crash-1"},
    )
    body = r.json()
    err = body["errors"][0]
    assert err["extensions"]["code"] == "INTERNAL_SERVER_ERROR", body
    assert r.status_code == 500
    for leak in ("secret detail", "dbx_aviation", "/srv/app.py", "RuntimeError", "Traceback"):
        assert leak not in r.text
    assert r.headers["x-request-id"] == "crash-1"
    assert r.headers.get("x-trace-id")
