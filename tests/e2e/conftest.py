"""E2E fixtures: the real app served by uvicorn in a subprocess on a free
port against the local stack (session-scoped, shared by every e2e module),
a ``token(org_id, role)`` helper, an ``httpx.AsyncClient``, and helpers to
wait for the gateway to serve from replicas and read the statements a
request ran (waits shared with other suites are in ``tests.support``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.auth import mint_token
from gateway.config import Settings, local_stack_dsns
from tests.support.wait import eventually, eventually_sync

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServedGateway:
    """A gateway served in a subprocess: its base URL and its worker's pid."""

    url: str
    pid: int


def _served(overrides: dict[str, str]) -> Iterator[str]:
    """Base URL of a served gateway (uvicorn subprocess, one worker)."""
    for served in _serve(overrides):
        yield served.url


def _serve(overrides: dict[str, str]) -> Iterator[ServedGateway]:
    """A served gateway (uvicorn subprocess, one worker), stopped after."""
    port = _free_port()
    env = dict(os.environ)
    env.update(overrides)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(REPO), env.get("PYTHONPATH")]))
    log = open(Path(tempfile.gettempdir()) / f"dbx-e2e-gateway-{port}.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "served_app:create",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError(f"gateway did not start; see {log.name}")
        time.sleep(0.2)
    try:
        yield ServedGateway(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _listening(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4), from /proc/net/tcp."""
    hex_port = f":{port:04X}"
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if r[1].endswith(hex_port) and r[3] == "0A")


@pytest.fixture
def serve_workers() -> Iterator[Callable[[int], ServedGateway]]:
    """``serve_workers(n)``: the gateway as ``dbx-gateway serve --workers n``
    runs it (``SO_REUSEPORT`` workers, one metrics directory), once every
    worker listens and ``/readyz`` answers; ``pid`` is the parent's. Stopped
    (SIGTERM, as a supervisor does) at teardown."""
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(workers: int) -> ServedGateway:
        port = _free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        path = Path(tempfile.gettempdir()) / f"dbx-e2e-gateway-{port}.log"
        log = open(path, "w")  # noqa: SIM115 - closed at teardown
        argv = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *argv],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((proc, log))
        url = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited at start; see {path}")
            try:
                return (
                    _listening(port) == workers
                    and httpx.get(f"{url}/readyz", timeout=1).status_code == 200
                )
            except httpx.HTTPError:
                return False

        eventually_sync(serving, 60, f"the gateway serving (log: {path})", period_s=0.2)
        return ServedGateway(url, proc.pid)

    yield start
    for proc, log in started:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def gateway_url() -> Iterator[str]:
    """The gateway as deployed: planned read path on."""
    yield from _served({})


@pytest.fixture(scope="session")
def resolver_gateway_url() -> Iterator[str]:
    """The gateway with the planned read path off: every field by resolvers
    and loaders."""
    yield from _served({"DBX_PLANNER": "off"})


# A prod gateway cannot use the generated dev secret; its tokens are signed
# with this one.
PROD_JWT_SECRET = "e2e-prod-secret-" + "0123456789abcdef" * 3
# The prod gateway's DBX_OPS_TOKEN: /metrics and the /readyz details need it.
PROD_OPS_TOKEN = "e2e-ops-token-" + "fedcba9876543210" * 3


@pytest.fixture(scope="session")
def prod_gateway() -> Iterator[ServedGateway]:
    """The gateway in production mode (``DBX_ENV=prod``), one worker, with
    its own JWT secret (``prod_token`` signs for it) and ops token
    (``PROD_OPS_TOKEN``), on the local stack's DSNs (prod mode has no
    defaults for them)."""
    dsns = local_stack_dsns()
    yield from _serve(
        {
            "DBX_ENV": "prod",
            "DBX_JWT_SECRET": PROD_JWT_SECRET,
            "DBX_OPS_TOKEN": PROD_OPS_TOKEN,
            "DBX_PRIMARY_DSN": os.environ.get("DBX_PRIMARY_DSN") or str(dsns["primary"]),
            "DBX_REPLICA_DSNS": os.environ.get("DBX_REPLICA_DSNS", ",".join(dsns["replicas"])),
        }
    )


@pytest.fixture(scope="session")
def prod_token(settings: Settings) -> Callable[..., str]:
    """``prod_token(org_id, role)``: a valid JWT for ``prod_gateway``."""
    prod = replace(settings, jwt_secret=PROD_JWT_SECRET, jwt_public_key=None)

    def make(org_id: uuid.UUID, role: str = "viewer", subject: str | None = None) -> str:
        return mint_token(prod, org_id=org_id, role=role, subject=subject or f"e2e-{role}")

    return make


@pytest.fixture(scope="session")
def token(settings: Settings) -> Callable[..., str]:
    """``token(org_id, role, **claims)``: a valid dev JWT for the served app."""

    def make(org_id: uuid.UUID, role: str = "viewer", subject: str | None = None) -> str:
        return mint_token(settings, org_id=org_id, role=role, subject=subject or f"e2e-{role}")

    return make


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        yield c


@pytest.fixture
async def resolver_client(resolver_gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=resolver_gateway_url, timeout=30) as c:
        yield c


class Api:
    """GraphQL calls as one org and role."""

    def __init__(self, client: httpx.AsyncClient, bearer: str) -> None:
        self.client = client
        self.headers = {"authorization": f"Bearer {bearer}"}
        self.consistency: str | None = None

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        h = dict(self.headers)
        if self.consistency:
            h["x-dbx-consistency"] = self.consistency
        h.update({k.replace("_", "-"): v for k, v in headers.items()})
        r = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=h
        )
        if r.headers.get("x-dbx-consistency"):
            self.consistency = r.headers["x-dbx-consistency"]
        return r

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.post(query, variables)
        body = r.json()
        assert r.status_code == 200 and "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture
def api(client: httpx.AsyncClient, token: Callable[..., str]) -> Callable[..., Api]:
    def make(org_id: uuid.UUID, role: str = "operator") -> Api:
        return Api(client, token(org_id, role))

    return make


async def statements_of(client: httpx.AsyncClient, request_id: str) -> list[str]:
    r = await client.get("/_test/statements", params={"request_id": request_id})
    return list(r.json()["statements"])


async def wait_replicas_serving(
    client: httpx.AsyncClient, max_lag_s: float = 5.0, timeout_s: float = 20
) -> None:
    """Until the gateway itself sees every replica up, its breaker closed and
    its lag within ``max_lag_s`` (``/readyz``): right after another suite
    restarted a replica, the router may still be sending reads to the
    primary for a probe or two."""
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = (await client.get("/readyz")).json()["nodes"]
        replicas = [n for n in nodes if n["role"] == "replica"]
        if replicas and all(
            n["state"] == "up"
            and n["breaker"] == "closed"
            and n["lag_s"] is not None
            and n["lag_s"] <= max_lag_s
            for n in replicas
        ):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas not serving after {timeout_s} s: {replicas}")
        await asyncio.sleep(0.1)


class HealthWatch:
    """Polls a worker's ``/healthz`` on fresh connections while a hostile
    request runs, and keeps the slowest answer: an event loop frozen by one
    request shows here as a slow or missing health answer.

    ``async with HealthWatch(url) as watch: ...`` then ``watch.worst_s``.
    """

    def __init__(self, url: str, period_s: float = 0.02) -> None:
        self.url = url
        self.period_s = period_s
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def worst_s(self) -> float:
        return max(self.samples, default=float("inf"))

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as c:
            while not self._stop.is_set():
                started = time.monotonic()
                r = await c.get("/healthz", headers={"connection": "close"})
                r.raise_for_status()
                self.samples.append(time.monotonic() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.period_s)

    async def __aenter__(self) -> HealthWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory since the last ``reset_peak_rss``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def reset_peak_rss(pid: int) -> None:
    """Resets the peak (``VmHWM``) to the current resident size (Linux
    ``clear_refs`` value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def count_on(dsn: str, sql: str) -> int:
    """One ``count(*)``-like value read on a fresh connection to ``dsn``."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def replayed_lock(primary_dsn: str, replica_dsn: str, table: str) -> AsyncIterator[None]:
    """An ``ACCESS EXCLUSIVE`` lock on ``table`` held on the primary until
    the block ends, and already replayed by the replica when it starts:
    every query there that reads the table waits meanwhile."""
    locker = await asyncpg.connect(primary_dsn)
    tx = locker.transaction()
    await tx.start()
    try:
        await locker.execute(f"lock table {table} in access exclusive mode")
        # the lock's WAL record sits in a page not yet flushed: a commit
        # elsewhere (one that took a transaction id) flushes it
        flusher = await asyncpg.connect(primary_dsn)
        try:
            await flusher.execute("select txid_current()")
        finally:
            await flusher.close()
        held = (
            "select count(*) from pg_locks where relation = "
            f"'{table}'::regclass and mode = 'AccessExclusiveLock' and granted"
        )
        await eventually(lambda: count_on(replica_dsn, held), 10, "the replica replaying the lock")
        yield
    finally:
        await tx.rollback()
        await locker.close()
