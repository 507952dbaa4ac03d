"""What the benchmark ran on: cores, memory, CPU model, PostgreSQL, PgBouncer,
Python and Node versions, as Markdown lines for the report.

Must not: start or change anything; every probe that fails reads "unknown".
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import asyncpg


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


async def postgres_version(dsn: str) -> str:
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError):
        return "unknown"
    try:
        return str(await conn.fetchval("show server_version"))
    finally:
        await conn.close()


def describe(*, pg_version: str, node_bin: str | None, dataset: str) -> list[str]:
    node = _first_line([node_bin, "--version"]) if node_bin else "not installed"
    wrk = _first_line(["wrk", "--version"])
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; memory {memory_gib():.1f} GiB;"
        f" {platform.system()} {platform.release()}",
        f"- PostgreSQL {pg_version}; {_first_line(['pgbouncer', '--version'])}",
        f"- Python {platform.python_version()}; Node {node}; {wrk.split(' [')[0]}",
        f"- Dataset: {dataset}",
    ]
