"""``/metrics`` of a 2-worker gateway (``dbx-gateway serve --workers 2``):
a scrape reaches one worker at random, and still every counter series only
grows from scrape to scrape, and the operation and request counters end
equal to the requests sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.wait import eventually

REQUESTS = 400
CONCURRENCY = 16
SCRAPES = 50
QUERY = "query MetricsProbe { fleet(first: 1) { edges { node { id } } } }"
OPS = ("dbx_graphql_operations_total", (("operation", "MetricsProbe"), ("outcome", "ok")))
POSTS = ("dbx_http_requests_total", (("method", "POST"), ("route", "/graphql"), ("status", "200")))

Series = tuple[str, tuple[tuple[str, str], ...]]


def counters(text: str) -> dict[Series, float]:
    """Every cumulative sample: counters, and histogram buckets, counts, sums
    (a ``_total`` sample under a TYPE line without the suffix parses as
    untyped: it counts too)."""
    out: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if family.type in ("counter", "histogram") or s.name.endswith("_total"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(sample: dict[Series, float], name: str, labels: tuple[tuple[str, str], ...]) -> float:
    return sum(v for (n, ls), v in sample.items() if n == name and set(labels) <= set(ls))


async def scrape(url: str) -> dict[Series, float]:
    # a new connection each time, so SO_REUSEPORT picks a worker each time
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200, r.text[:200]
    return counters(r.text)


async def test_counters_hold_across_workers(
    serve_workers: Callable[[int], Any], make_org: Any, token: Callable[..., str]
) -> None:
    url = serve_workers(2).url
    headers = {"authorization": f"Bearer {token(await make_org(), 'viewer')}"}
    sent = 0
    done = asyncio.Event()

    async def client() -> None:
        nonlocal sent
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            while sent < REQUESTS:
                sent += 1
                r = await c.post("/graphql", json={"query": QUERY}, headers=headers)
                assert r.status_code == 200, r.text

    async def load() -> None:
        try:
            await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        finally:
            done.set()

    async def scrapes() -> list[dict[Series, float]]:
        taken = [await scrape(url)]
        # spread over the load, and at least SCRAPES of them
        while len(taken) < SCRAPES or not done.is_set():
            taken.append(await scrape(url))
            await asyncio.sleep(0.01)
        return taken

    _, taken = await asyncio.gather(load(), scrapes())
    # the last requests' counts land as their responses end; a scrape that
    # never reaches them fails the equality below
    final: dict[Series, float] = {}

    async def counted() -> bool:
        nonlocal final
        final = await scrape(url)
        return value(final, *OPS) >= REQUESTS

    with contextlib.suppress(AssertionError):
        await eventually(counted, 10, "every request counted", period_s=0.05)
    taken.append(final)

    drops = [
        (key, before[key], after.get(key, 0.0))
        for before, after in zip(taken, taken[1:], strict=False)
        for key in before
        if after.get(key, 0.0) < before[key]
    ]
    during = [value(t, *OPS) for t in taken]
    print(
        f"\n{len(taken)} scrapes of a 2-worker gateway under {REQUESTS} requests "
        f"({CONCURRENCY} at once): {len(drops)} counter drops between scrapes; "
        f"operations counter seen {[int(v) for v in during[:: max(len(during) // 10, 1)]]}, "
        f"final {value(final, *OPS):.0f}, POST /graphql 200 final {value(final, *POSTS):.0f}"
    )
    assert sent == REQUESTS
    assert not drops, drops[:10]
    assert value(final, *OPS) == REQUESTS
    assert value(final, *POSTS) == REQUESTS
