"""Metrics of several worker processes (``PROMETHEUS_MULTIPROC_DIR``): two
processes record, the files merge into one exposition: counters summed, node
gauges by their modes, an exited worker's gauge views dropped and its counts
kept; ``MultiprocessDir`` gives each server start an empty directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.metrics import MULTIPROC_ENV, MultiprocessDir

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import json, os, sys
from gateway.observability.metrics import GatewayMetrics
view = json.loads(sys.argv[1])
m = GatewayMetrics()
assert m.multiprocess_dir == os.environ["PROMETHEUS_MULTIPROC_DIR"]
for _ in range(view["requests"]):
    m.http_requests.inc("/graphql", "POST", "200")
    m.sql_duration.observe(0.002, "replica_1", "read")
m.nodes.update(view["nodes"])
print(os.getpid())
"""


def node(name: str, role: str, *, up: bool, lag: float, size: int) -> dict[str, object]:
    return {
        "name": name,
        "role": role,
        "state": "up" if up else "down",
        "breaker": "closed" if up else "open",
        "lag_s": lag,
        "pool": {"size": size, "in_use": 1, "idle": size - 1, "waiting": 0},
    }


def record(path: Path, requests: int, nodes: list[dict[str, object]]) -> int:
    env = {**os.environ, MULTIPROC_ENV: str(path), "PYTHONPATH": str(REPO)}
    view = json.dumps({"requests": requests, "nodes": nodes})
    out = subprocess.run(
        [sys.executable, "-c", WORKER, view], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def merged(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_workers_merge_by_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with MultiprocessDir(2) as server:
        assert server.path == str(tmp_path)
        merge_and_drop(tmp_path, server)


def merge_and_drop(tmp_path: Path, server: MultiprocessDir) -> None:
    first = record(
        tmp_path,
        3,
        [
            node("primary", "primary", up=True, lag=0, size=4),
            node("replica_1", "replica", up=True, lag=0.5, size=2),
        ],
    )
    record(
        tmp_path,
        5,
        [
            node("primary", "primary", up=True, lag=0, size=4),
            node("replica_1", "replica", up=False, lag=2.0, size=3),
        ],
    )
    s = merged(tmp_path)
    post = (("method", "POST"), ("route", "/graphql"), ("status", "200"))
    assert s[("dbx_http_requests_total", post)] == 8
    assert s[("dbx_sql_duration_seconds_count", (("intent", "read"), ("node", "replica_1")))] == 8
    assert s[("dbx_node_up", (("node", "replica_1"), ("role", "replica")))] == 0  # lowest
    assert s[("dbx_node_up", (("node", "primary"), ("role", "primary")))] == 1
    assert s[("dbx_breaker_open", (("node", "replica_1"),))] == 1  # highest
    assert s[("dbx_replica_lag_seconds", (("node", "replica_1"),))] == 2.0  # highest
    assert s[("dbx_pool_size", (("node", "replica_1"),))] == 5  # summed
    assert s[("dbx_pool_in_use", (("node", "primary"),))] == 2
    assert s[("dbx_replicas_available", ())] == 0  # lowest

    server.worker_exited(first)  # its node views go, its counts stay
    s = merged(tmp_path)
    assert s[("dbx_http_requests_total", post)] == 8
    assert s[("dbx_pool_size", (("node", "replica_1"),))] == 3
    assert s[("dbx_node_up", (("node", "replica_1"), ("role", "replica")))] == 0


def test_each_start_gets_an_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with MultiprocessDir(1) as one:
        assert one.path is None and MULTIPROC_ENV not in os.environ
    with MultiprocessDir(2) as made:
        assert made.path is not None and os.environ[MULTIPROC_ENV] == made.path
        (Path(made.path) / "counter_1.db").write_bytes(b"x")
    assert MULTIPROC_ENV not in os.environ and not Path(made.path).exists()

    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old")
    (given / "keep.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with MultiprocessDir(2) as d:
        assert d.path == str(given) and sorted(p.name for p in given.iterdir()) == ["keep.txt"]
    assert given.exists() and os.environ[MULTIPROC_ENV] == str(given)
