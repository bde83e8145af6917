"""Prometheus as a real part: Debian's ``prometheus`` scrapes a dev cluster's master and worker.

A dev cluster (``orchlive.dev.DevCluster``: its own etcd, a master, one worker with two GPUs
and a ``/metrics`` port) and a Prometheus on free loopback ports with a generated config
(1 s scrapes); a task runs, and its traces are read back through Prometheus's HTTP API.
Every process is started here and stopped here by its PID. Also: ``deploy/prometheus.yml``
passes ``promtool check config``, and the Grafana dashboard asks only for metrics that a
master or a worker really serves.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchlive.dev import DevCluster
from orchlive.etcd_server import free_port

from .test_worker_metrics import parse_metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "orchlive.json"
WAIT = 20.0  # seconds any one wait may take; the whole module stays well under a minute


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            pass
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def dev() -> Iterator[DevCluster]:
    if shutil.which("etcd") is None:
        pytest.skip("no 'etcd' binary on PATH: install Debian's etcd-server (.ci/run does)")
    cluster = DevCluster(workers=1, port=free_port(), resources={"gpu": 2000}, lease_ttl=2, report=lambda _: None)
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def prometheus(dev: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's prometheus scraping ``dev`` every second; yields its URL; stopped by its PID."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no 'prometheus' binary on PATH: install Debian's prometheus (.ci/run does)")
    folder = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "orchlive-master", "static_configs": [{"targets": [f"127.0.0.1:{dev.port}"]}]},
            {
                "job_name": "orchlive-worker",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in dev.metrics_ports.values()]}],
            },
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(folder / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: process.poll() is None and httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector ``expr`` evaluates to now, through Prometheus's HTTP API."""
    reply = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def _value_is(url: str, expr: str, expected: float) -> bool:
    result = _query(url, expr)
    return len(result) == 1 and float(result[0]["value"][1]) == pytest.approx(expected)


@pytest.mark.timeout(90)
def test_prometheus_scrapes_the_master_and_the_worker(dev: DevCluster, prometheus: str) -> None:
    def all_up() -> bool:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return len(targets) == 2 and all(t["health"] == "up" for t in targets)

    _until(all_up, "both targets up")
    body = {"name": "gpu-share", "command": ["sleep", "60"], "resources": {"cpu": 1000, "memory": 64, "gpu": 500}}
    task = httpx.post(f"{dev.url}/api/v1/tasks", json=body, timeout=10).json()
    try:
        # The master's view (etcd's records) and the worker's own, each through Prometheus.
        _until(lambda: _value_is(prometheus, 'orch_tasks{state="RUNNING",job="orchlive-master"}', 1), "master RUNNING")
        _until(lambda: _value_is(prometheus, 'orch_worker_running_tasks{node="w1"}', 1), "worker running 1")
        _until(lambda: _value_is(prometheus, 'orch_worker_used{node="w1",resource="gpu"}', 500), "worker gpu used")
        held = _query(prometheus, 'sum(orch_node_device_used_ratio{node="w1",kind="gpu"})')
        assert float(held[0]["value"][1]) == pytest.approx(0.5)
        age = _query(prometheus, 'orch_worker_heartbeat_age_seconds{node="w1"}')
        assert 0 <= float(age[0]["value"][1]) < 30  # renewed (lease 2 s), not counting since the start
    finally:
        httpx.delete(f"{dev.url}/api/v1/tasks/{task['id']}", timeout=10)
    _until(lambda: _value_is(prometheus, 'orch_worker_running_tasks{node="w1"}', 0), "worker running 0")


def test_deploy_prometheus_config_is_valid() -> None:
    path = ROOT / "deploy" / "prometheus.yml"
    promtool = shutil.which("promtool")
    if promtool is not None:
        done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr
    jobs = {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}
    assert set(jobs) == {"orchlive-master", "orchlive-worker"}
    # The ports the compose file gives: the master's API, the worker's --metrics-port.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker_port = compose["worker"]["command"][compose["worker"]["command"].index("--metrics-port") + 1]
    assert jobs["orchlive-worker"]["dns_sd_configs"][0]["port"] == int(worker_port)
    assert jobs["orchlive-master"]["dns_sd_configs"][0]["port"] == 8080
    monitoring = {name for name, s in compose.items() if s.get("profiles") == ["monitoring"]}
    assert monitoring == {"prometheus", "grafana"}


def _dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs and all(exprs)
    return {name for expr in exprs for name in re.findall(r"\borch_[a-z_]+\b", expr)}


def test_dashboard_asks_only_for_metrics_that_are_served(dev: DevCluster) -> None:
    served = set()
    for url in [dev.url, *(f"http://127.0.0.1:{p}" for p in dev.metrics_ports.values())]:
        served |= {name for name, _ in parse_metrics(httpx.get(f"{url}/metrics", timeout=5).text)}
    wanted = _dashboard_metrics()
    assert wanted - served == set()
    # The panels the dashboard promises: placements/s, pending, latency, utilisation, heartbeat age.
    assert {"orch_scheduling_seconds_count", "orch_scheduling_seconds_bucket", "orch_tasks"} <= wanted
    assert {"orch_node_allocated", "orch_node_capacity", "orch_worker_heartbeat_age_seconds"} <= wanted
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert {panel["datasource"]["uid"] for panel in panels} == {uid}
