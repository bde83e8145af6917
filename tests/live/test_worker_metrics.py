"""A worker's ``/metrics`` (orchlive.worker_metrics), and the master's device gauges.

The rendering is checked on a worker object holding real tasks (no servers), its text by
Prometheus's own linter when ``promtool`` is installed; then a real worker serves it on its
``--metrics-port`` beside a real master, and a busy port is one line, exit status 2.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from orchlive.etcd_server import free_port
from orchlive.models import Resources, Task, TaskState
from orchlive.runtime import make_runtime
from orchlive.store import Store
from orchlive.worker import Worker, _Running
from orchlive.worker_metrics import render

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Metrics:
    """Prometheus text -> {(name, labels): value}; fails on any line that is neither a comment nor a sample."""
    found: Metrics = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, inner, value = match.groups()
        labels = {k: re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), v) for k, v in _LABEL.findall(inner or "")}
        found[(name, frozenset(labels.items()))] = float(value)
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics[(name, frozenset(labels.items()))]


def promtool_lint(text: str) -> None:
    """``promtool check metrics`` (Prometheus's own parser and linter) when installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr


def _task(task_id: str, cpu: int, memory: int, gpu: int, devices: list[int]) -> Task:
    resources = Resources.model_validate({"cpu": cpu, "memory": memory, "gpu": gpu})
    return Task(id=task_id, name=task_id, resources=resources, devices={"gpu": devices}, state=TaskState.RUNNING)


def test_render_counts_what_runs_here(tmp_path: Path) -> None:
    worker = Worker(
        Store("127.0.0.1:1", "/unit"),
        make_runtime("process"),
        node_id='w"1',  # a quote in the node id: escaped in the label
        capacity=Resources.model_validate({"cpu": 4000, "memory": 8192, "gpu": 2000}),
        data_dir=tmp_path,
        devices={"gpu": 2},
    )
    # Two shares of GPU 1 (500 + 250 milli-GPU) and nothing on GPU 0.
    for task in (_task("a", 1000, 256, 500, [1]), _task("b", 500, 128, 250, [1])):
        worker.running[task.id] = _Running(task, 0, handle=None, waiter=None)  # type: ignore[arg-type]
    text = render(worker, now=worker.renewed_at + 2.5)
    promtool_lint(text)
    assert 'node="w\\"1"' in text
    m = parse_metrics(text)
    node = 'w"1'
    assert value(m, "orch_worker_running_tasks", node=node) == 2
    assert value(m, "orch_worker_capacity", node=node, resource="gpu") == 2000
    assert value(m, "orch_worker_used", node=node, resource="cpu") == 1500
    assert value(m, "orch_worker_used", node=node, resource="memory") == 384
    assert value(m, "orch_worker_used", node=node, resource="gpu") == 750
    assert value(m, "orch_worker_device_used_ratio", node=node, kind="gpu", device="0") == 0
    assert math.isclose(value(m, "orch_worker_device_used_ratio", node=node, kind="gpu", device="1"), 0.75)
    assert math.isclose(value(m, "orch_worker_heartbeat_age_seconds", node=node), 2.5)
    # The heartbeat age grows while the lease is not renewed.
    later = parse_metrics(render(worker, now=worker.renewed_at + 12.0))
    assert math.isclose(value(later, "orch_worker_heartbeat_age_seconds", node=node), 12.0)


def _start_worker(cluster, name: str, metrics_port: int) -> None:  # type: ignore[no-untyped-def]
    args = ["worker", "--name", name, "--cpu", "4000", "--memory", "8192", "--resource", "gpu=2000"]
    args += ["--lease-ttl", str(cluster.lease_ttl), "--data-dir", str(cluster.work_dir)]
    cluster.workers[name] = cluster._spawn([*args, "--metrics-port", str(metrics_port)], f"{name}.log")
    cluster.wait_until(lambda: cluster.node_state(name) == "READY", timeout=20, what=f"worker {name} READY")


def test_worker_serves_metrics_and_the_master_shows_devices(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    port = free_port()
    _start_worker(cluster, "w1", port)
    body = {"name": "gpu-share", "command": ["sleep", "60"], "resources": {"cpu": 1000, "memory": 64, "gpu": 500}}
    task = cluster.submit(body)
    cluster.wait_for_state(task["id"], {"RUNNING"})

    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    promtool_lint(response.text)
    m = parse_metrics(response.text)
    assert value(m, "orch_worker_running_tasks", node="w1") == 1
    assert value(m, "orch_worker_used", node="w1", resource="cpu") == 1000
    assert value(m, "orch_worker_capacity", node="w1", resource="cpu") == 4000
    shares = [value(m, "orch_worker_device_used_ratio", node="w1", kind="gpu", device=d) for d in ("0", "1")]
    assert sorted(shares) == [0, 0.5]
    age = value(m, "orch_worker_heartbeat_age_seconds", node="w1")
    assert 0 <= age < 30  # renewed while running (a lease of 2 s is renewed about every 0.7 s)
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404

    master_text = cluster.http.get("/metrics").text
    promtool_lint(master_text)  # the master's text too, histogram included
    master = parse_metrics(master_text)
    held = [value(master, "orch_node_device_used_ratio", node="w1", kind="gpu", device=d) for d in ("0", "1")]
    assert held == shares  # the ledger's devices are the ones the worker gave the task

    cluster.http.delete(f"/api/v1/tasks/{task['id']}")
    cluster.wait_until(
        lambda: (
            parse_metrics(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)[
                ("orch_worker_running_tasks", frozenset({("node", "w1")}))
            ]
            == 0
        ),
        timeout=20,
        what="the worker's running tasks back to 0",
    )


def test_a_busy_metrics_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "orchlive", "worker", "--etcd", "127.0.0.1:1", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --metrics-port {port}: cannot listen"), done.stderr


def test_dev_gives_each_worker_a_metrics_port_and_refuses_a_busy_one() -> None:
    from orchlive.dev import DevCluster

    assert DevCluster(workers=3, metrics_port=9101).metrics_ports == {"w1": 9101, "w2": 9102, "w3": 9103}
    free = DevCluster(workers=2).metrics_ports
    assert len(set(free.values())) == 2 and all(0 < p < 65536 for p in free.values())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dev = ["dev", "--workers", "1", "--port", str(free_port()), "--metrics-port", str(port)]
        done = subprocess.run(
            [sys.executable, "-m", "orchlive", *dev],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    assert done.stderr == f"error: --metrics-port {port}: 127.0.0.1:{port} is already in use; choose another port\n"
