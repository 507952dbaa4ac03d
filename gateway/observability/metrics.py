"""The gateway's Prometheus metrics, through ``prometheus_client``.

One process: the families live in this ``GatewayMetrics``'s own registry
(nothing module-level), and ``/metrics`` renders it. Several worker processes
(``gateway.serving.serve``): ``PROMETHEUS_MULTIPROC_DIR`` names a directory,
emptied at each server start (``MultiprocessDir``), where every worker records
into its own memory-mapped files; ``/metrics`` on any worker merges all the
files, so a counter is the sum over the server's workers, exited ones
included, and never goes back when a scrape lands on another worker. The
variable must be set before ``prometheus_client`` is imported (it picks its
value store then): ``serve`` sets it for the workers it spawns.

Node gauges (``Database.describe()``) are each worker's view of the same
nodes: the worst view counts for state (``livemin`` of ``dbx_node_up`` and
``dbx_replicas_available``, ``livemax`` of ``dbx_breaker_open`` and
``dbx_replica_lag_seconds``), since a worker that cannot use a node fails its
share of requests; pool gauges are summed (``livesum``), since each worker
has its own pools and the server holds their sum. With several workers each
one refreshes its view every ``NODE_GAUGE_INTERVAL_S`` (``node_gauge_loop``),
and the scraped one just before rendering.

Metric names are part of the contract (CONTRACT.md, "Add freely; rename only
with a reason"); they are listed in ``deploy/observability/RUNBOOK.md``.

Must not: know about HTTP, GraphQL or SQL beyond the label values it is given.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Generic, Literal, TypeVar

import prometheus_client as pc
from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger("dbx.observability")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
NODE_GAUGE_INTERVAL_S = 1.0

# Seconds. Sub-millisecond buckets matter for SQL point lookups.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
MAX_SERIES = 2000  # per family: a label explosion must not eat the process
OVERFLOW = "other"

Labels = tuple[str, ...]
NodeView = list[dict[str, object]]
M = TypeVar("M", pc.Counter, pc.Histogram)
GaugeMode = Literal["livemin", "livemax", "livesum"]


def multiprocess_dir() -> str | None:
    """The shared directory when ``prometheus_client`` records into files."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and values.ValueClass is not values.MutexValue else None


class Family(Generic[M]):
    """A labelled family whose children are looked up once per label set."""

    def __init__(
        self, name: str, metric: M, registry: CollectorRegistry, labels: Sequence[str]
    ) -> None:
        self.name = name
        self.labels = tuple(labels)
        self.metric: M = metric
        self.registry = registry
        self.series: dict[Labels, M] = {} if labels else {(): metric}

    def child(self, values: Labels) -> M:
        found = self.series.get(values)
        if found is not None:
            return found
        key = values if len(self.series) < MAX_SERIES else tuple(OVERFLOW for _ in values)
        made = self.series.get(key)
        if made is None:
            made = self.series[key] = self.metric.labels(*key)
        return made

    def sample(self, suffix: str, values: Labels) -> float:
        labels = dict(zip(self.labels, values, strict=True))
        found = self.registry.get_sample_value(self.name + suffix, labels)
        return 0.0 if found is None else found


class Counter(Family[pc.Counter]):
    def __init__(
        self, registry: CollectorRegistry, name: str, help_text: str, labels: Sequence[str] = ()
    ) -> None:
        if not name.endswith("_total"):
            raise ValueError("counter names end in _total")
        metric: pc.Counter = pc.Counter(name, help_text, labels, registry=registry)
        super().__init__(name, metric, registry, labels)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        self.child(values).inc(amount)

    def value(self, *values: str) -> float:
        return self.sample("", values)


class Histogram(Family[pc.Histogram]):
    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Iterable[float] = LATENCY_BUCKETS,
    ) -> None:
        metric = pc.Histogram(name, help_text, labels, registry=registry, buckets=tuple(buckets))
        super().__init__(name, metric, registry, labels)

    def observe(self, value: float, *values: str) -> None:
        self.child(values).observe(value)

    def count(self, *values: str) -> int:
        return int(self.sample("_count", values))


class NodeGauges:
    """Gauges from ``Database.describe()`` (one dict per node)."""

    def __init__(self, registry: CollectorRegistry, multiprocess: bool) -> None:
        def gauge(name: str, help_text: str, labels: Sequence[str], mode: GaugeMode) -> pc.Gauge:
            return pc.Gauge(name, help_text, labels, registry=registry, multiprocess_mode=mode)

        self.multiprocess = multiprocess
        self.up = gauge(
            "dbx_node_up", "1 when the node is reachable and usable.", ("node", "role"), "livemin"
        )
        self.breaker = gauge(
            "dbx_breaker_open", "1 while the node's circuit breaker is open.", ("node",), "livemax"
        )
        self.lag = gauge(
            "dbx_replica_lag_seconds", "Replica replay lag as last probed.", ("node",), "livemax"
        )
        self.pool = {
            "size": gauge("dbx_pool_size", "Connections in the node's pool.", ("node",), "livesum"),
            "in_use": gauge(
                "dbx_pool_in_use", "Pooled connections checked out.", ("node",), "livesum"
            ),
            "idle": gauge("dbx_pool_idle", "Pooled connections idle.", ("node",), "livesum"),
            "waiting": gauge(
                "dbx_pool_waiting",
                "Requests waiting for a pooled connection.",
                ("node",),
                "livesum",
            ),
            "analytics_waiting": gauge(
                "dbx_analytics_waiting",
                "Analytics transactions waiting for a slot (DBX_ANALYTICS_CONCURRENCY).",
                ("node",),
                "livesum",
            ),
        }
        self.replicas = gauge(
            "dbx_replicas_available", "Replicas up with a closed breaker.", (), "livemin"
        )

    def update(self, db_nodes: NodeView) -> None:
        if not self.multiprocess:
            # one process: exactly this snapshot's series (a file-backed
            # series cannot be removed; its last value stands instead)
            for g in (self.up, self.breaker, self.lag, *self.pool.values()):
                g.clear()
        available = 0
        for d in db_nodes:
            name, role = str(d.get("name", "")), str(d.get("role", ""))
            is_up = d.get("state") == "up" and d.get("breaker") == "closed"
            self.up.labels(name, role).set(1.0 if is_up else 0.0)
            self.breaker.labels(name).set(1.0 if d.get("breaker") == "open" else 0.0)
            if role == "replica":
                available += int(is_up)
                lag_s = d.get("lag_s")
                if isinstance(lag_s, int | float):
                    self.lag.labels(name).set(float(lag_s))
            pool = d.get("pool")
            if isinstance(pool, dict):
                for key, g in self.pool.items():
                    v = pool.get(key)
                    if isinstance(v, int | float):
                        g.labels(name).set(float(v))
        self.replicas.set(float(available))


class GatewayMetrics:
    """Every metric family of the gateway, by name (see RUNBOOK.md)."""

    def __init__(self) -> None:
        # Counters and histograms would also expose ``*_created`` series in
        # one process (not in several): neither is part of the contract.
        pc.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess_dir = multiprocess_dir()
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            r,
            "dbx_http_requests_total",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
        )
        self.http_duration = Histogram(
            r,
            "dbx_http_request_duration_seconds",
            "HTTP request latency, first byte in to last out.",
            ("route", "method"),
        )
        self.operations = Counter(
            r,
            "dbx_graphql_operations_total",
            "GraphQL operations by operation name, type and outcome (ok, error, rejected).",
            ("operation", "type", "outcome"),
        )
        self.operation_duration = Histogram(
            r,
            "dbx_graphql_operation_duration_seconds",
            "GraphQL operation latency.",
            ("operation", "type"),
        )
        self.resolver_duration = Histogram(
            r,
            "dbx_resolver_duration_seconds",
            "Resolvers slower than DBX_TRACE_RESOLVER_MIN_MS (and every top-level field).",
            ("parent_type", "field"),
        )
        self.loader_batch_duration = Histogram(
            r, "dbx_loader_batch_duration_seconds", "Loader batch latency.", ("loader",)
        )
        self.sql_duration = Histogram(
            r,
            "dbx_sql_duration_seconds",
            "SQL statement latency by node and intent.",
            ("node", "intent"),
        )
        self.sql_errors = Counter(
            r,
            "dbx_sql_errors_total",
            "SQL statements that failed, by node and intent.",
            ("node", "intent"),
        )
        self.missing_partition = Counter(
            r,
            "dbx_ingest_missing_partition_total",
            "Telemetry ingests refused because the partition for their time is missing.",
        )
        self.slow_operations = Counter(
            r,
            "dbx_slow_operations_total",
            "Operations slower than DBX_SLOW_OPERATION_MS.",
            ("operation", "type"),
        )
        self.nodes = NodeGauges(r, multiprocess=self.multiprocess_dir is not None)

    def render(self, db_nodes: NodeView) -> str:
        """The text exposition format: this process's registry, or with
        several workers every worker's files merged."""
        self.nodes.update(db_nodes)
        if self.multiprocess_dir is None:
            return generate_latest(self.registry).decode()
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged).decode()

    async def node_gauge_loop(self, describe: Callable[[], NodeView]) -> None:
        """With several workers: keep this worker's node view in its files
        (a scrape reaches one worker; the others' views must be fresh too)."""
        if self.multiprocess_dir is None:
            return
        while True:
            try:
                self.nodes.update(describe())
            except Exception:  # a gauge refresh never takes the worker down
                log.warning("node gauge refresh failed", exc_info=True)
            await asyncio.sleep(NODE_GAUGE_INTERVAL_S)


class MultiprocessDir:
    """``PROMETHEUS_MULTIPROC_DIR`` for one server start (``with``): the
    operator's directory emptied of the last start's files, or with several
    workers and none given, a temporary one removed at the end. Set before
    the workers are spawned, so they record into files."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.path: str | None = None
        self._made = False

    def __enter__(self) -> MultiprocessDir:
        given = os.environ.get(MULTIPROC_ENV)
        if given:
            # files from an earlier start would be added to this one's counts
            Path(given).mkdir(parents=True, exist_ok=True)
            for old in Path(given).glob("*.db"):
                old.unlink(missing_ok=True)
            self.path = given
        elif self.workers > 1:
            self.path = tempfile.mkdtemp(prefix="dbx-metrics-")
            self._made = True
            os.environ[MULTIPROC_ENV] = self.path
        return self

    def worker_exited(self, pid: int | None) -> None:
        """Drop an exited worker's gauge views (its counts stay)."""
        if self.path is not None and pid is not None:
            mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._made and self.path is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(self.path, ignore_errors=True)
