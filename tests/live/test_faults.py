"""Faults, bounded in time: a worker killed with SIGKILL, etcd stopped and restarted, a worker restart."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.live


def marker_task(name: str, out: Path, seconds: float, cpu: int = 1000) -> dict:
    """A task that sleeps, then appends its name to ``out``: a line per run that reached the end."""
    return {
        "name": name,
        "image": "alpine",
        "command": ["sh", "-c", f"sleep {seconds}; echo {name} >> {out}"],
        "resources": {"cpu": cpu, "memory": 256},
    }


def test_kill_9_of_a_worker_reschedules_its_tasks_once(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy="bin_packing", lease_ttl=2)
    cluster.start_master()
    cluster.start_worker("w1", cpu=4000)
    cluster.start_worker("w2", cpu=4000)
    out = tmp_path / "runs.txt"
    # bin_packing fills w1 first: four 1000-millicore tasks all land there.
    tasks = [cluster.submit(marker_task(f"t{i}", out, 4)) for i in range(4)]
    for t in tasks:
        assert cluster.wait_for_state(t["id"], {"RUNNING"})["node_id"] == "w1"
    killed_at = time.monotonic()
    cluster.kill_worker("w1", signal.SIGKILL)
    # Within the lease TTL (2 s) plus a few seconds every task is back in the queue or moved on.
    cluster.wait_until(
        lambda: all(
            cluster.task(t["id"])["node_id"] != "w1" or cluster.task(t["id"])["state"] == "PENDING" for t in tasks
        ),
        timeout=2 + 5,
        what="tasks leaving w1",
    )
    assert time.monotonic() - killed_at < 2 + 5
    for t in tasks:
        done = cluster.wait_for_state(t["id"], {"COMPLETED", "FAILED"}, timeout=30)
        assert done["state"] == "COMPLETED" and done["node_id"] == "w2" and done["attempts"] == 2, done
    runs = Counter(out.read_text().split())
    assert runs == Counter({f"t{i}": 1 for i in range(4)}), "a task ran to completion twice (or never)"
    assert cluster.nodes()["w1"]["state"] == "NOT_READY"
    kinds = [e["type"] for e in cluster.events(0)]
    assert kinds.count("task.rescheduled") == 4 and "node.lost" in kinds


def test_etcd_restart_mid_run(cluster_factory, etcd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(lease_ttl=5)
    cluster.start_master()
    cluster.start_worker("w1", cpu=8000)
    out = tmp_path / "runs.txt"
    before = [cluster.submit(marker_task(f"b{i}", out, 2, cpu=500)) for i in range(3)]
    for t in before:
        cluster.wait_for_state(t["id"], {"RUNNING"})
    etcd.stop()
    time.sleep(1.5)
    etcd.start()
    cluster.wait_until(lambda: cluster._get_ok("/api/v1/tasks"), timeout=20, what="API back after etcd restart")
    after = [cluster.submit(marker_task(f"a{i}", out, 1, cpu=500)) for i in range(3)]
    for t in before + after:
        assert cluster.wait_for_state(t["id"], {"COMPLETED", "FAILED"}, timeout=40)["state"] == "COMPLETED"
    assert sorted(out.read_text().split()) == sorted([f"b{i}" for i in range(3)] + [f"a{i}" for i in range(3)])


def test_a_restarted_worker_reconciles(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(lease_ttl=10)
    cluster.start_master()
    cluster.start_worker("w1")
    out = tmp_path / "runs.txt"
    task = cluster.submit(marker_task("r", out, 3))
    cluster.wait_for_state(task["id"], {"RUNNING"})
    # Kill and restart within the lease: the master never notices, the new worker must.
    cluster.kill_worker("w1", signal.SIGKILL)
    cluster.start_worker("w1", wait=False)
    done = cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"}, timeout=30)
    assert done["state"] == "COMPLETED" and done["attempts"] == 2
    assert out.read_text().split() == ["r"]


def test_timeout_kills_the_task(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1")
    task = cluster.submit(
        {"name": "slow", "image": "alpine", "command": ["sleep", "30"], "timeout": 1, "resources": {"cpu": 100}}
    )
    started = time.monotonic()
    done = cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"}, timeout=15)
    assert done["state"] == "FAILED" and "timed out" in done["reason"]
    assert time.monotonic() - started < 10
    assert cluster.nodes()["w1"]["allocated"]["cpu"] == 0


def test_drain_with_evict_moves_tasks(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy="first_fit")
    cluster.start_master()
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    task = cluster.submit({"name": "d", "image": "alpine", "command": ["sleep", "60"], "resources": {"cpu": 100}})
    assert cluster.wait_for_state(task["id"], {"RUNNING"})["node_id"] == "w1"
    response = cluster.http.post("/api/v1/nodes/w1/drain", params={"evict": "true"})
    assert response.status_code == 200 and response.json()["state"] == "DRAINING"
    cluster.wait_until(lambda: cluster.task(task["id"])["node_id"] == "w2", timeout=10, what="task moved to w2")
    again = cluster.submit({"name": "n", "image": "alpine", "command": ["true"], "resources": {"cpu": 100}})
    assert cluster.wait_for_state(again["id"], {"COMPLETED"})["node_id"] == "w2"
