"""The alerting rules and the dashboard name only metrics ``/metrics`` has,
and the rules pass ``promtool check rules``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from gateway.db.connection import StatementEvent
from gateway.observability import Observability

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
NAME = re.compile(r"\bdbx_[a-z_]+\b")


def exposed_sample_names() -> set[str]:
    obs = Observability(
        Settings(primary_dsn="postgresql://unused@127.0.0.1:1/none", jwt_secret="x" * 40),
        env={"OTEL_SDK_DISABLED": "true"},
    )
    # one observation in every family, so histograms expose _bucket/_sum/_count
    m = obs.metrics
    m.http_requests.inc("/graphql", "POST", "200")
    m.http_duration.observe(0.1, "/graphql", "POST")
    m.operations.inc("Q", "query", "ok")
    m.operation_duration.observe(0.1, "Q", "query")
    m.resolver_duration.observe(0.1, "Query", "fleet")
    m.loader_batch_duration.observe(0.1, "x")
    m.slow_operations.inc("Q", "query")
    obs.on_statement(
        StatementEvent(
            "select 1", "primary", None, "read", "r", None, 0.0, 0, 0.001, 1, ValueError()
        )
    )
    obs.inc_missing_partition()
    nodes: list[dict[str, object]] = [
        {
            "name": "replica_1",
            "role": "replica",
            "state": "up",
            "breaker": "closed",
            "lag_s": 0.1,
            "pool": {"size": 1, "in_use": 0, "idle": 1, "waiting": 0},
        },
    ]
    names: set[str] = set()
    for family in text_string_to_metric_families(obs.metrics_text(nodes)):
        names.update(s.name for s in family.samples)
    return names


def referenced(text: str) -> set[str]:
    return set(NAME.findall(text))


def test_alert_rules_name_only_exposed_metrics() -> None:
    missing = referenced((DEPLOY / "alerts.yml").read_text()) - exposed_sample_names()
    assert not missing, missing


def test_dashboard_names_only_exposed_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dbx-gateway.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(referenced(e) for e in exprs))
    assert not used - exposed_sample_names(), used - exposed_sample_names()
    # and every family is on the dashboard at least once
    families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in used}
    for family in (
        "dbx_http_requests_total",
        "dbx_sql_duration_seconds",
        "dbx_pool_waiting",
        "dbx_replica_lag_seconds",
        "dbx_breaker_open",
        "dbx_node_up",
        "dbx_graphql_operations_total",
        "dbx_resolver_duration_seconds",
    ):
        assert family in families, family


def test_promtool_accepts_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `deploy/local/stack up` installs it (Debian: prometheus)"
    out = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
