"""At most one copy of a task runs at a time, even when its worker freezes or loses etcd (issue 13, item 6).

The tasks stamp a ledger while they run (``tests/live/ledger.py``); two executions of one
task overlap when one starts before the other's last stamp. Lease TTL 2 s (the worker
stops its tasks 0.25 s before the lease could expire), the master's grace 2 s.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from orchlive.etcd_cluster import EtcdCluster

from .harness import LiveCluster
from .ledger import Ledger, ledger_task

pytestmark = pytest.mark.live
TTL = 2


def _moved(cluster: LiveCluster, ids: list[str], node: str, timeout: float) -> None:
    """Wait until every task runs on ``node`` (a 503 while etcd elects a leader is asked again)."""

    def there(task_id: str) -> bool:
        try:
            task = cluster.task(task_id)
        except (AssertionError, httpx.HTTPError):
            return False
        return task["node_id"] == node and task["state"] == "RUNNING"

    cluster.wait_until(lambda: all(there(i) for i in ids), timeout=timeout, what=f"tasks running on {node}")


def _ticking(cluster: LiveCluster, ledger: Path, ids: list[str]) -> None:
    """Wait until the ledger shows every task ticking (so the first copy really runs)."""
    cluster.wait_until(lambda: all(Ledger.read(ledger).runs.get(i) for i in ids), timeout=20, what="ledger ticks")


def test_a_frozen_worker_s_tasks_are_killed_by_their_supervisor_before_the_rerun(
    cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy="first_fit", lease_ttl=TTL)
    cluster.start_master()
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    ledger = tmp_path / "ledger.txt"
    ids = [cluster.submit(ledger_task(f"f{i}", ledger, 12))["id"] for i in range(3)]
    _moved(cluster, ids, "w1", timeout=20)
    _ticking(cluster, ledger, ids)
    frozen = cluster.workers["w1"]
    frozen.send_signal(signal.SIGSTOP)
    stopped_at = time.time()
    try:
        _moved(cluster, ids, "w2", timeout=TTL + 2 + 15)
        time.sleep(1)
    finally:
        frozen.send_signal(signal.SIGCONT)
    for task_id in ids:
        done = cluster.wait_for_state(task_id, {"COMPLETED", "FAILED"}, timeout=40)
        assert done["state"] == "COMPLETED" and done["node_id"] == "w2" and done["attempts"] == 2, done
    seen = Ledger.read(ledger)
    assert seen.overlaps() == [], "two copies of a task ran at once"
    for task_id in ids:
        first, second = seen.runs[task_id]
        assert (first.attempt, second.attempt) == (1, 2) and not first.done and second.done
        assert first.last < stopped_at + TTL, "the supervisor let the copy run past the lease"
        assert second.first - first.last > 0.5  # the margin and the grace, minus the supervisor's poll
        reason = (cluster.work_dir / "w1" / "logs" / f"{task_id}-1.stopped").read_text()
        assert "did not renew its lease in time" in reason
    cluster.wait_until(lambda: cluster.node_state("w1") == "READY", timeout=20, what="w1 back after SIGCONT")
    _evicted_while_its_worker_is_slow(cluster, ledger)


def _evicted_while_its_worker_is_slow(cluster: LiveCluster, ledger: Path) -> None:
    """A drain with evict while w1 is frozen (below its lease): the task waits for w1's stop, then moves.

    The eviction deletes w1's inbox key at once, but w1 kills its copy only once it sees
    that: placed again before, the task would run on w2 beside it (``orchlive.stopping``).
    """
    task_id = cluster.submit(ledger_task("evicted", ledger, 4))["id"]
    _moved(cluster, [task_id], "w1", timeout=20)
    _ticking(cluster, ledger, [task_id])
    slow = cluster.workers["w1"]
    slow.send_signal(signal.SIGSTOP)  # for 0.8 s: the lease (TTL 2 s, renewed every 0.5 s) holds
    try:
        drained = cluster.http.post("/api/v1/nodes/w1/drain", params={"evict": "true"})
        assert drained.status_code == 200, drained.text
        held = cluster.task(task_id)
        assert (held["state"], held["stopping"]) == ("PENDING", "w1"), held
        time.sleep(0.8)
        assert cluster.task(task_id)["state"] == "PENDING"  # not placed on w2 while w1's copy runs
    finally:
        slow.send_signal(signal.SIGCONT)
    done = cluster.wait_for_state(task_id, {"COMPLETED", "FAILED"}, timeout=30)
    assert (done["state"], done["node_id"], done["stopping"]) == ("COMPLETED", "w2", None), done
    seen = Ledger.read(ledger)
    assert seen.overlaps() == [], "the evicted copy ran beside its rerun"
    first, second = seen.runs[task_id]
    assert (first.attempt, second.attempt) == (1, 2) and second.first > first.last


def test_a_worker_cut_off_from_etcd_stops_its_tasks_before_its_lease_expires(
    etcd_cluster: EtcdCluster, tmp_path: Path
) -> None:
    cluster = LiveCluster(etcd_cluster, tmp_path, policy="first_fit", lease_ttl=TTL)  # type: ignore[arg-type]
    try:
        cluster.start_master()
        # w1's only etcd member is the third; the master and w2 use the list (first healthy: the first).
        lone = etcd_cluster.members[2].endpoint
        cluster.start_worker("w1", env={"ORCH_ETCD": lone})
        cluster.start_worker("w2")
        ledger = tmp_path / "ledger.txt"
        ids = [cluster.submit(ledger_task(f"c{i}", ledger, 12))["id"] for i in range(2)]
        _moved(cluster, ids, "w1", timeout=20)
        _ticking(cluster, ledger, ids)
        etcd_cluster.kill(2)
        cut_at = time.time()
        _moved(cluster, ids, "w2", timeout=TTL + 2 + 15)
        for task_id in ids:
            assert cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=40)["attempts"] == 2
        seen = Ledger.read(ledger)
        assert seen.overlaps() == []
        for task_id in ids:
            first, second = seen.runs[task_id]
            assert not first.done and first.last < cut_at + TTL, "w1 kept running past its lease"
            assert second.done
        # Why, in the worker's log: its own stop, or (on a loaded machine) its supervisors' a moment sooner.
        log = (tmp_path / "w1.log").read_text()
        said = r"worker w1 could not renew its lease for [\d.]+ s \(etcd unreachable|stopped by its supervisor"
        assert re.search(said, log), log[-2000:]
        etcd_cluster.start_member(2)
        cluster.wait_until(lambda: cluster.node_state("w1") == "READY", timeout=30, what="w1 back with its member")
    finally:
        cluster.stop()


def test_a_worker_fails_over_to_another_etcd_member_without_stopping_its_task(
    etcd_cluster: EtcdCluster, tmp_path: Path
) -> None:
    cluster = LiveCluster(etcd_cluster, tmp_path, lease_ttl=4)  # type: ignore[arg-type]
    try:
        cluster.start_master()
        cluster.start_worker("w1")
        ledger = tmp_path / "ledger.txt"
        task_id = cluster.submit(ledger_task("k", ledger, 8))["id"]
        cluster.wait_for_state(task_id, {"RUNNING"})
        _ticking(cluster, ledger, [task_id])
        used = re.findall(r"etcd: using endpoint (\S+)", (tmp_path / "w1.log").read_text())[-1]
        etcd_cluster.kill(etcd_cluster.member_at(used))
        done = cluster.wait_for_state(task_id, {"COMPLETED", "FAILED"}, timeout=60)
        assert done["state"] == "COMPLETED" and done["attempts"] == 1, done
        assert [r.attempt for r in Ledger.read(ledger).runs[task_id]] == [1]
        log = (tmp_path / "w1.log").read_text()
        assert re.findall(r"etcd: using endpoint (\S+)", log)[-1] != used
        assert "could not renew its lease" not in log
        after = cluster.submit(ledger_task("k2", ledger, 0.2))["id"]  # the inbox watch survived too
        assert cluster.wait_for_state(after, {"COMPLETED"}, timeout=60)["node_id"] == "w1"
    finally:
        cluster.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="running tasks as another user needs a root worker")
def test_tasks_run_as_the_configured_user(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", env={"ORCH_RUN_AS": "nobody"})
    body = {"name": "who", "image": "alpine", "command": ["id", "-u"], "resources": {"cpu": 100}}
    task = cluster.submit(body)
    assert cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"})["state"] == "COMPLETED"
    import pwd

    assert cluster.http.get(f"/api/v1/tasks/{task['id']}/logs").text.strip() == str(pwd.getpwnam("nobody").pw_uid)


def test_docker_containers_of_a_frozen_worker_stop_before_the_rerun(cluster_factory, docker_engine) -> None:  # type: ignore[no-untyped-def]
    import docker

    cluster = cluster_factory(policy="first_fit", lease_ttl=TTL)
    cluster.docker_host = docker_engine
    cluster.start_master()
    cluster.start_worker("d1", runtime="docker")
    cluster.start_worker("d2", runtime="docker")
    task_id = cluster.submit({"name": "z", "image": "alpine", "command": ["sleep", "20"], "resources": {"cpu": 100}})[
        "id"
    ]
    assert cluster.wait_for_state(task_id, {"RUNNING"}, timeout=60)["node_id"] == "d1"
    client = docker.DockerClient(base_url=docker_engine)
    seen: list[tuple[float, set[str]]] = []  # (time, nodes running a container of the task)
    cluster.workers["d1"].send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + TTL + 2 + 30
        while time.monotonic() < deadline:
            running = client.containers.list(filters={"label": f"orch.task={task_id}", "status": "running"})
            seen.append((time.monotonic(), {c.labels["orch.node"] for c in running}))
            if seen[-1][1] == {"d2"}:
                break
            time.sleep(0.1)
    finally:
        cluster.workers["d1"].send_signal(signal.SIGCONT)
    assert all(len(nodes) <= 1 for _, nodes in seen), "two containers of the task ran at once"
    assert seen[-1][1] == {"d2"}, "the task was not rerun on d2"
    last_d1 = max(t for t, nodes in seen if "d1" in nodes) if any("d1" in n for _, n in seen) else seen[0][0]
    first_d2 = min(t for t, nodes in seen if "d2" in nodes)
    assert first_d2 - last_d1 > 0.5
    client.close()
    cluster.http.delete(f"/api/v1/tasks/{task_id}")
