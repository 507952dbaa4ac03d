"""The load generator: ``wrk`` with ``wrk/graphql.lua`` against one server
and one query, a warm-up run first, and the result as a ``Measurement``.

Must not: start servers (``servers.py``) or decide what is asked (``queries.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "graphql.lua"


@dataclass
class Measurement:
    """One server and query: rate, latency percentiles (ms) and error counts."""

    rate: float  # answered without errors, per second
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # responses with "errors", non-2xx, socket errors and timeouts
    detail: dict[str, int] = field(default_factory=dict)
    cpu_split: list[float] = field(default_factory=list)  # per worker, CPU seconds
    machine_busy: float | None = None  # share of all cores busy (anyone's) during the run
    first_error: str = ""
    cpu_us: dict[str, float] = field(default_factory=dict)  # per answered request, by component
    seconds: float = 0.0  # measured duration

    def cell(self, unit: str = "req/s") -> str:
        err = f", **{self.errors} errors**" if self.errors else ""
        return f"{self.rate:,.0f} {unit} (p50 {self.p50_ms:.1f} / p99 {self.p99_ms:.1f} ms{err})"

    @property
    def answered(self) -> int:
        return round(self.rate * self.seconds)


def combine(rounds: list[Measurement]) -> Measurement:
    """Rounds of one cell as one measurement: the rate over all measured
    seconds; p50 and p99 the rounds' percentiles weighted by their answered
    requests (wrk reports percentiles, not samples); CPU per request over all
    rounds' answered requests."""
    if len(rounds) == 1:
        return rounds[0]
    seconds = sum(m.seconds for m in rounds)
    answered = sum(m.answered for m in rounds)
    weight = [m.answered / answered if answered else 1 / len(rounds) for m in rounds]
    cpu: dict[str, float] = {}
    for m, w in zip(rounds, weight, strict=True):
        for k, v in m.cpu_us.items():
            cpu[k] = cpu.get(k, 0.0) + v * w
    split = [sum(x) for x in zip(*(m.cpu_split for m in rounds), strict=True)]
    busy = [m.machine_busy for m in rounds if m.machine_busy is not None]
    return Measurement(
        rate=answered / seconds if seconds else 0.0,
        p50_ms=sum(m.p50_ms * w for m, w in zip(rounds, weight, strict=True)),
        p99_ms=sum(m.p99_ms * w for m, w in zip(rounds, weight, strict=True)),
        requests=sum(m.requests for m in rounds),
        errors=sum(m.errors for m in rounds),
        cpu_split=split,
        machine_busy=sum(busy) / len(busy) if busy else None,
        first_error=next((m.first_error for m in rounds if m.first_error), ""),
        cpu_us=cpu,
        seconds=seconds,
    )


def ensure_wrk() -> str:
    exe = shutil.which("wrk")
    if exe is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is missing: apt-get install -y wrk")
    return exe


def run_wrk(
    url: str, token: str, bodies_file: Path, *, seconds: float, connections: int, threads: int
) -> Measurement:
    env = {**os.environ, "BENCH_BODIES": str(bodies_file), "BENCH_TOKEN": token}
    argv = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (rc {out.returncode}): {out.stderr or out.stdout}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    first = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_FIRST_ERROR ")), "")
    errors = r["gql_errors"] + r["bad_status"] + r["socket_errors"] + r["timeouts"]
    return Measurement(
        # only good answers count: an error is not a served request
        rate=max(r["requests"] - errors, 0) / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        requests=r["requests"],
        errors=errors,
        detail={k: int(v) for k, v in r.items()},
        first_error=first.removeprefix("BENCH_FIRST_ERROR ")[:300],
        seconds=r["duration_us"] / 1e6,
    )
