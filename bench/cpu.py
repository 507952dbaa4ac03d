"""Where the machine's CPU went during one measured run, per answered
request: the server's workers, the client (``wrk``, or the raw asyncpg
tasks in this process), PostgreSQL (every node and its background
processes), PgBouncer and everything else.

Read from ``/proc/<pid>/stat`` before and after the run. ``wrk`` ends before
the second reading, so its time comes from this process's children's
rusage instead. Processes that start and end inside the run without being
this process's children (PostgreSQL's parallel query workers, for one) are
not seen; their time lands in "other", the machine's busy time that no
component accounts for.

``wait_drained`` waits until the server and the database have finished the
work of requests a load generator gave up on when it stopped, so that work
is not counted against the next measured run.

Must not: start or stop anything.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
COMPONENTS = ("server", "client", "PostgreSQL", "PgBouncer", "other")


def _processes() -> dict[int, tuple[str, float]]:
    """pid -> (command name, utime + stime seconds) of every process."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def _busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLK_TCK


def _own(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """``start()`` before the measured run, ``stop(answered)`` after it:
    CPU microseconds per answered request by component.

    ``client_is_self``: the client runs in this process (raw asyncpg), so
    this process's own time is the client's; otherwise the client is a
    child that has ended (``wrk``)."""

    def __init__(self, server_pids: list[int], *, client_is_self: bool) -> None:
        self._server = set(server_pids)
        self._self_client = client_is_self
        self._before: dict[int, tuple[str, float]] = {}
        self._busy0 = self._children0 = self._self0 = 0.0

    def start(self) -> None:
        self._before = _processes()
        self._busy0 = _busy_seconds()
        self._children0 = _own(resource.RUSAGE_CHILDREN)
        self._self0 = _own(resource.RUSAGE_SELF)

    def stop(self, answered: int) -> dict[str, float]:
        busy = _busy_seconds() - self._busy0
        children = _own(resource.RUSAGE_CHILDREN) - self._children0
        own = _own(resource.RUSAGE_SELF) - self._self0
        used = dict.fromkeys(COMPONENTS, 0.0)
        me = os.getpid()
        for pid, (comm, cpu) in _processes().items():
            if pid == me:
                continue
            delta = cpu - self._before.get(pid, (comm, 0.0))[1]
            if pid in self._server:
                used["server"] += delta
            elif comm == "postgres":
                used["PostgreSQL"] += delta
            elif comm == "pgbouncer":
                used["PgBouncer"] += delta
        used["client"] = children + (own if self._self_client else 0.0)
        counted = sum(used.values())
        # the rest of the machine's busy time: other processes, the kernel's
        # own threads, this process when it is not the client
        used["other"] = max(busy - counted, 0.0)
        n = max(answered, 1)
        return {k: v * 1e6 / n for k, v in used.items()}


DRAIN_STEP_S = 0.2
DRAIN_IDLE_CPU_S = 0.02  # per step: 10 % of one core


def wait_drained(server_pids: list[int], *, timeout_s: float = 60.0) -> float:
    """Block until the server's processes, PostgreSQL and PgBouncer stay
    nearly idle for two steps in a row; the seconds waited.

    When ``wrk`` stops, the requests still open on its connections are
    abandoned, not cancelled: a server keeps running them (queued analytics
    and their SQL included). Measured right away, the next run would pay
    for them without counting them: 32 abandoned Q6 requests are some 2 s
    of both cores.
    """
    watched = set(server_pids)

    def used() -> float:
        return sum(
            cpu
            for pid, (comm, cpu) in _processes().items()
            if pid in watched or comm in ("postgres", "pgbouncer")
        )

    t0 = time.monotonic()
    last, quiet = used(), 0
    while quiet < 2 and time.monotonic() - t0 < timeout_s:
        time.sleep(DRAIN_STEP_S)
        now = used()
        quiet = quiet + 1 if now - last < DRAIN_IDLE_CPU_S else 0
        last = now
    return time.monotonic() - t0
