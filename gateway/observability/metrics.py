"""A small Prometheus registry: counters and histograms kept in plain dicts,
rendered to the text exposition format on demand.

The OpenTelemetry MeterProvider would do the same work through several layers
of views and aggregations on every observation; a gateway records a few
observations per SQL statement, so this stays a dict lookup and a bisect.
One registry belongs to one ``Observability`` instance (nothing module-level).
Everything runs on the event loop thread, so no locks are taken.

Metric names are part of the contract (CONTRACT.md, "Add freely; rename only
with a reason"); they are listed in ``deploy/observability/RUNBOOK.md``.

Must not: know about HTTP, GraphQL or SQL beyond the label values it is given.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

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


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def label_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Family:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)

    def _key(self, values: Labels, series: dict[Labels, object]) -> Labels:
        if values in series or len(series) < MAX_SERIES:
            return values
        return tuple(OVERFLOW for _ in values)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(Family):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError("counter names end in _total")
        super().__init__(name, help_text, labels)
        self.series: dict[Labels, float] = {}

    def inc(self, *values: str, amount: float = 1.0) -> None:
        series = self.series
        key = self._key(values, series)  # type: ignore[arg-type]
        series[key] = series.get(key, 0.0) + amount

    def value(self, *values: str) -> float:
        return self.series.get(values, 0.0)

    def render(self) -> list[str]:
        # The family is declared without _total (OpenMetrics); samples keep it.
        base = self.name[: -len("_total")]
        lines = [f"# HELP {base} {self.help}", f"# TYPE {base} counter"]
        if not self.series and not self.labels:
            lines.append(f"{self.name} 0")
        for values, v in self.series.items():
            lines.append(f"{self.name}{label_text(self.labels, values)} {fmt(v)}")
        return lines


class Histogram(Family):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Iterable[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(buckets))
        # per series: [count per bucket (non-cumulative, +Inf last)..., sum]
        self.series: dict[Labels, list[float]] = {}

    def observe(self, value: float, *values: str) -> None:
        series = self.series
        key = self._key(values, series)  # type: ignore[arg-type]
        row = series.get(key)
        if row is None:
            row = series[key] = [0.0] * (len(self.bounds) + 2)
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def count(self, *values: str) -> int:
        row = self.series.get(values)
        return 0 if row is None else int(sum(row[:-1]))

    def render(self) -> list[str]:
        lines = self.header()
        for values, row in self.series.items():
            cumulative = 0.0
            for i, bound in enumerate((*self.bounds, math.inf)):
                cumulative += row[i]
                le = f'le="{fmt(bound)}"'
                lines.append(
                    f"{self.name}_bucket{label_text(self.labels, values, le)} {fmt(cumulative)}"
                )
            lines.append(f"{self.name}_sum{label_text(self.labels, values)} {fmt(row[-1])}")
            lines.append(f"{self.name}_count{label_text(self.labels, values)} {fmt(cumulative)}")
        return lines


class Gauge(Family):
    """Set at scrape time from a snapshot (pool sizes, lag, node state)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.samples: list[tuple[Labels, float]] = []

    def render(self) -> list[str]:
        lines = self.header()
        for values, v in self.samples:
            lines.append(f"{self.name}{label_text(self.labels, values)} {fmt(v)}")
        return lines


class GatewayMetrics:
    """Every metric family of the gateway, by name (see RUNBOOK.md)."""

    def __init__(self) -> None:
        self.http_requests = Counter(
            "dbx_http_requests_total",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
        )
        self.http_duration = Histogram(
            "dbx_http_request_duration_seconds",
            "HTTP request latency, first byte in to last out.",
            ("route", "method"),
        )
        self.operations = Counter(
            "dbx_graphql_operations_total",
            "GraphQL operations by operation name, type and outcome (ok, error, rejected).",
            ("operation", "type", "outcome"),
        )
        self.operation_duration = Histogram(
            "dbx_graphql_operation_duration_seconds",
            "GraphQL operation latency.",
            ("operation", "type"),
        )
        self.resolver_duration = Histogram(
            "dbx_resolver_duration_seconds",
            "Resolvers slower than DBX_TRACE_RESOLVER_MIN_MS (and every top-level field).",
            ("parent_type", "field"),
        )
        self.loader_batch_duration = Histogram(
            "dbx_loader_batch_duration_seconds", "Loader batch latency.", ("loader",)
        )
        self.sql_duration = Histogram(
            "dbx_sql_duration_seconds",
            "SQL statement latency by node and intent.",
            ("node", "intent"),
        )
        self.sql_errors = Counter(
            "dbx_sql_errors_total",
            "SQL statements that failed, by node and intent.",
            ("node", "intent"),
        )
        self.missing_partition = Counter(
            "dbx_ingest_missing_partition_total",
            "Telemetry ingests refused because the partition for their time is missing.",
        )
        self.slow_operations = Counter(
            "dbx_slow_operations_total",
            "Operations slower than DBX_SLOW_OPERATION_MS.",
            ("operation", "type"),
        )

    def families(self) -> list[Family]:
        return [
            self.http_requests,
            self.http_duration,
            self.operations,
            self.operation_duration,
            self.resolver_duration,
            self.loader_batch_duration,
            self.sql_duration,
            self.sql_errors,
            self.missing_partition,
            self.slow_operations,
        ]

    def node_gauges(self, db_nodes: list[dict[str, object]]) -> list[Gauge]:
        """Gauges from ``Database.describe()`` (one dict per node), built per scrape."""
        up = Gauge("dbx_node_up", "1 when the node is reachable and usable.", ("node", "role"))
        breaker = Gauge(
            "dbx_breaker_open", "1 while the node's circuit breaker is open.", ("node",)
        )
        lag = Gauge("dbx_replica_lag_seconds", "Replica replay lag as last probed.", ("node",))
        size = Gauge("dbx_pool_size", "Connections in the node's pool.", ("node",))
        in_use = Gauge("dbx_pool_in_use", "Pooled connections checked out.", ("node",))
        idle = Gauge("dbx_pool_idle", "Pooled connections idle.", ("node",))
        waiting = Gauge("dbx_pool_waiting", "Requests waiting for a pooled connection.", ("node",))
        analytics = Gauge(
            "dbx_analytics_waiting",
            "Analytics transactions waiting for a slot (DBX_ANALYTICS_CONCURRENCY).",
            ("node",),
        )
        replicas = Gauge("dbx_replicas_available", "Replicas up with a closed breaker.")
        available = 0
        for d in db_nodes:
            name, role = str(d.get("name", "")), str(d.get("role", ""))
            is_up = d.get("state") == "up" and d.get("breaker") == "closed"
            up.samples.append(((name, role), 1.0 if is_up else 0.0))
            breaker.samples.append(((name,), 1.0 if d.get("breaker") == "open" else 0.0))
            if role == "replica":
                available += int(is_up)
                lag_s = d.get("lag_s")
                if isinstance(lag_s, int | float):
                    lag.samples.append(((name,), float(lag_s)))
            pool = d.get("pool")
            if isinstance(pool, dict):
                for gauge, key in (
                    (size, "size"),
                    (in_use, "in_use"),
                    (idle, "idle"),
                    (waiting, "waiting"),
                    (analytics, "analytics_waiting"),
                ):
                    v = pool.get(key)
                    if isinstance(v, int | float):
                        gauge.samples.append(((name,), float(v)))
        replicas.samples.append(((), float(available)))
        return [up, breaker, lag, size, in_use, idle, waiting, analytics, replicas]

    def render(self, db_nodes: list[dict[str, object]]) -> str:
        lines: list[str] = []
        for family in (*self.families(), *self.node_gauges(db_nodes)):
            lines.extend(family.render())
        return "\n".join(lines) + "\n"
