"""Hostile clients against the operational endpoints of a production-mode
gateway: an anonymous ``/readyz`` tells a probe ready or not and nothing
about the nodes, ``/metrics`` needs the ops token (``DBX_OPS_TOKEN``), and
with that token both answer in full."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.config import local_stack_dsns
from tests.e2e.conftest import (
    PROD_JWT_SECRET,
    PROD_OPS_TOKEN,
    ServedGateway,
    _free_port,
    _serve,
)

# error class names a node's reason may carry (``ConnectionRefusedError: ...``)
OPS_ERROR_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b")


@pytest.fixture(scope="module")
def ops_gateway() -> Iterator[ServedGateway]:
    """A prod gateway whose third replica never answers (nothing listens on
    its port), so the node details carry an error as well as addresses."""
    dsns = local_stack_dsns()
    ghost = f"postgresql://dbx_gateway:x@127.0.0.1:{_free_port()}/dbx_ghost"
    replicas = [*dsns["replicas"], ghost]
    yield from _serve(
        {
            "DBX_ENV": "prod",
            "DBX_JWT_SECRET": PROD_JWT_SECRET,
            "DBX_OPS_TOKEN": PROD_OPS_TOKEN,
            "DBX_PRIMARY_DSN": os.environ.get("DBX_PRIMARY_DSN") or str(dsns["primary"]),
            "DBX_REPLICA_DSNS": ",".join(replicas),
        }
    )


def ops_internals(nodes: list[dict[str, Any]]) -> set[str]:
    """What an anonymous caller must not learn: each node's DSN and its host,
    port, user and database, its address, and the words naming them."""
    found = {"dsn", "address", "nodes", "dbx_gateway"}
    for n in nodes:
        found.update(str(n[k]) for k in ("dsn", "address", "name", "reason") if n.get(k))
        dsn = urlsplit(str(n["dsn"]))
        found.update(str(p) for p in (dsn.hostname, dsn.port, dsn.username) if p)
        found.add(dsn.path.lstrip("/"))
    return {s for s in found if s}


async def test_item6_anonymous_probes_show_no_internals(ops_gateway: ServedGateway) -> None:
    """An anonymous ``/readyz`` answers only ``{"ready": ...}`` (same status
    as before, for kubelets) and names no DSN, host, port, user, database or
    error class; an anonymous or wrongly authorized ``/metrics`` is refused
    (401); with ``Authorization: Bearer <DBX_OPS_TOKEN>`` both answer in
    full."""
    ops = {"authorization": f"Bearer {PROD_OPS_TOKEN}"}
    async with httpx.AsyncClient(base_url=ops_gateway.url, timeout=10) as c:
        deadline = time.monotonic() + 10
        while not any(n["reason"] for n in (await c.get("/readyz", headers=ops)).json()["nodes"]):
            assert time.monotonic() < deadline, "the unreachable replica was never reported"
            await asyncio.sleep(0.1)
        anon = await c.get("/readyz")
        anon_metrics = await c.get("/metrics")
        wrong = await c.get("/readyz", headers={"authorization": "Bearer not-the-ops-token"})
        wrong_metrics = await c.get("/metrics", headers={"authorization": f"Bearer {'x' * 40}"})
        full = await c.get("/readyz", headers=ops)
        full_metrics = await c.get("/metrics", headers=ops)

    assert full.status_code == 200, full.text
    nodes = full.json()["nodes"]
    assert {n["role"] for n in nodes} >= {"primary", "replica"}
    assert all(n["dsn"] for n in nodes)
    reasons = [n["reason"] for n in nodes if n["reason"]]
    secrets = ops_internals(nodes)
    leaked = sorted(s for s in secrets if s in anon.text)
    errors_named = [m.group(0) for m in OPS_ERROR_NAME.finditer(anon.text)]
    print(
        f"anonymous /readyz {anon.status_code}: {len(anon.content)} bytes, leaked {leaked}, "
        f"error names {errors_named} (the nodes' reasons: {reasons}); "
        f"anonymous /metrics {anon_metrics.status_code} "
        f"({len(anon_metrics.content)} bytes); with token /readyz {len(full.content)} bytes, "
        f"/metrics {full_metrics.status_code} ({len(full_metrics.content)} bytes)"
    )
    assert anon.status_code == 200
    assert anon.json() == {"ready": True}, anon.text
    assert not leaked and not errors_named
    assert anon_metrics.status_code == 401, anon_metrics.text[:200]
    assert anon_metrics.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "dbx_" not in anon_metrics.text
    # a wrong token is told so, and learns nothing more
    assert wrong.status_code == 401 and not any(s in wrong.text for s in secrets)
    assert wrong_metrics.status_code == 401 and "dbx_" not in wrong_metrics.text
    assert full_metrics.status_code == 200
    assert full_metrics.headers["content-type"].startswith("text/plain")
    assert "dbx_node_up{" in full_metrics.text
