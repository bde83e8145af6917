"""Gangs in the live cluster: all replicas at once or none, placed where the shared core places them, kept whole.

A gang of ``k`` is ``k`` task records (replica 0's id is the gang's); the master asks the
core (``orchsim.scheduling.gangs.place_gang`` through ``PassExtensions``) and commits every
replica in one transaction, or none.

To keep CI short, the tests after the first share one cluster (``two_nodes``: a master with
``--preemption`` and two workers of 4000 millicores labelled ``pin=w1``, ``pin=w2``); each
leaves it empty, and the one that kills a worker comes last.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchlive.etcd_server import EtcdServer
from orchlive.limits import MAX_REPLICAS
from orchsim.scheduling import NodeMatrix, PreparedPolicy
from orchsim.scheduling.gangs import place_gang

from .harness import LiveCluster

pytestmark = pytest.mark.live

WORKERS = {"w1": 4000, "w2": 8000, "w3": 6000}  # cpu millicores; memory 8192 MiB each


def _gang(name: str, replicas: int, cpu: int, command: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": name, "command": command, "resources": {"cpu": cpu, "memory": 64}, "replicas": replicas}
    return body | extra


def _replicas(cluster: Any, gang: dict[str, Any]) -> list[dict[str, Any]]:
    """Every replica of a gang, in replica order (ids ``<gang>``, ``<gang>-1``, ...)."""
    ids = [gang["id"]] + [f"{gang['id']}-{i}" for i in range(1, gang["replicas"])]
    return [cluster.task(tid) for tid in ids]


def expected_nodes(policy: str, replicas: int, cpu: int, held: dict[str, int]) -> list[str]:
    """The core's gang decision on the same capacities, with ``held`` cpu already used per node."""
    names = sorted(WORKERS)
    nodes = NodeMatrix.from_capacities(
        {"cpu": [WORKERS[n] for n in names], "memory": [8192] * 3, "gpu": [0] * 3}, ids=names
    )
    for name, used in held.items():
        nodes.allocate(names.index(name), np.array([float(used), 64.0, 0.0]))
    placements = place_gang(nodes, np.array([float(cpu), 64.0, 0.0]), (replicas, replicas), PreparedPolicy(policy))
    return [names[node] for node, _ in placements]


@pytest.fixture(scope="module")
def two_nodes(etcd: EtcdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    cluster = LiveCluster(etcd, Path(tmp_path_factory.mktemp("gangs")))
    cluster.start_master(extra=["--preemption"])
    for name in ("w1", "w2"):
        cluster.start_worker(name, cpu=4000, memory=8192, labels=f"pin={name}")
    yield cluster
    cluster.stop()


def _clear(cluster: LiveCluster) -> None:
    """Delete every task and wait until no node holds any: the next test starts on an empty cluster."""
    for task in cluster.tasks():
        cluster.http.delete(f"/api/v1/tasks/{task['id']}")
    cluster.wait_until(
        lambda: not cluster.tasks() and not any(n["tasks"] for n in cluster.nodes().values() if n["state"] == "READY"),
        timeout=20,
        what="an empty cluster",
    )


def test_a_gang_lands_where_the_core_places_it(cluster_factory: Any) -> None:
    policy = "spread"  # bin packing is the shared cluster's policy (the preemption test below)
    cluster = cluster_factory(policy=policy)
    cluster.start_master()
    for name, cpu in WORKERS.items():
        cluster.start_worker(name, cpu=cpu, memory=8192)
    first = cluster.submit({"name": "single", "command": ["sleep", "600"], "resources": {"cpu": 3000, "memory": 64}})
    first = cluster.wait_for_state(first["id"], {"RUNNING"}, timeout=20)
    gang = cluster.submit(_gang("train", 4, 2000, ["sleep", "600"]))
    assert gang["gang"] == gang["id"] and gang["replicas"] == 4
    cluster.wait_until(
        lambda: all(r["state"] == "RUNNING" for r in _replicas(cluster, gang)), timeout=20, what="the gang running"
    )
    live = [r["node_id"] for r in _replicas(cluster, gang)]
    expected = expected_nodes(policy, 4, 2000, {first["node_id"]: 3000})
    assert live == expected, (live, expected)
    assert len(set(live)) > 1  # the test can tell: the replicas span nodes
    cluster.stop()


def test_two_gangs_that_exceed_the_cluster_run_one_after_the_other(two_nodes: LiveCluster) -> None:
    """Issue 17's acceptance: 2 x 3 replicas of 2000 on 8000 in all: the waiting gang holds nothing, both end."""
    cluster = two_nodes
    a = cluster.submit(_gang("a", 3, 2000, ["sleep", "3"]))
    b = cluster.submit(_gang("b", 3, 2000, ["sleep", "3"]))
    cluster.wait_until(
        lambda: all(r["state"] == "RUNNING" for r in _replicas(cluster, a)), timeout=20, what="gang a running"
    )
    waiting = _replicas(cluster, b)
    assert all(r["state"] == "PENDING" and r["node_id"] is None for r in waiting), waiting
    allocated = sum(node["allocated"]["cpu"] for node in cluster.nodes().values())
    assert allocated == 3 * 2000  # gang a's replicas only: b holds nothing while it waits
    cluster.wait_until(
        lambda: all(r["state"] == "COMPLETED" for r in _replicas(cluster, a) + _replicas(cluster, b)),
        timeout=40,
        what="both gangs completed",
    )
    ends_a = max(r["end_time"] for r in _replicas(cluster, a))
    starts_b = min(r["start_time"] for r in _replicas(cluster, b))
    assert starts_b > min(r["end_time"] for r in _replicas(cluster, a)), (starts_b, ends_a)
    _clear(cluster)


def test_min_replicas_bounds_and_the_client(two_nodes: LiveCluster, capsys: Any) -> None:
    """``min_replicas`` lets a gang start with fewer (the spares SKIPPED); bad values are a 422 naming the field."""
    from orchlive.__main__ import main

    cluster = two_nodes
    for bad in ({"replicas": 0}, {"replicas": MAX_REPLICAS + 1}, {"replicas": 2, "min_replicas": 3}, {"replicas": "2"}):
        response = cluster.http.post("/api/v1/tasks", json={"name": "x", "command": ["true"]} | bad)
        assert response.status_code == 422 and "replicas" in response.text, (bad, response.text)
    capsys.readouterr()
    argv = ["--master", cluster.url, "submit", "--name", "elastic", "--cpu", "3000", "--replicas", "3"]
    assert main([*argv, "--min-replicas", "2", "--", "sleep", "600"]) == 0
    gang_id = capsys.readouterr().out.strip()
    gang = cluster.task(gang_id)
    assert (gang["replicas"], gang["min_replicas"]) == (3, 2)
    cluster.wait_until(
        lambda: [r["state"] for r in _replicas(cluster, gang)] == ["RUNNING", "RUNNING", "SKIPPED"],
        timeout=20,
        what="two replicas running, one spare",
    )
    assert main(["--master", cluster.url, "delete", gang_id]) == 0  # the whole gang goes
    assert [t for t in cluster.tasks() if t.get("gang") == gang_id] == []
    _clear(cluster)


def test_a_gang_preempts_the_victims_the_core_plans(two_nodes: LiveCluster) -> None:
    """``--preemption``: a priority-10 gang of 2 x 2000 on two full nodes evicts a on w1, then c on w2.

    The worked example of ``tests/scheduling/test_gang_preemption.py``: w1 holds a (1) and
    b (5), w2 holds c (2) and d (3), each 2000 of 4000; b and d are reprieved.
    """
    cluster = two_nodes
    since = max((e["id"] for e in cluster.events(0)), default=0)
    low = {}
    for name, (node, priority) in {"a": ("w1", 1), "b": ("w1", 5), "c": ("w2", 2), "d": ("w2", 3)}.items():
        body = {"name": name, "command": ["sleep", "600"], "resources": {"cpu": 2000, "memory": 64}}
        low[name] = cluster.submit(body | {"priority": priority, "node_selector": {"pin": node}})
        cluster.wait_for_state(low[name]["id"], {"RUNNING"}, timeout=20)
    gang = cluster.submit(_gang("urgent", 2, 2000, ["sleep", "600"], priority=10))
    cluster.wait_until(
        lambda: all(r["state"] == "RUNNING" for r in _replicas(cluster, gang)), timeout=30, what="the gang running"
    )
    assert [r["node_id"] for r in _replicas(cluster, gang)] == ["w1", "w2"]
    states = {name: cluster.task(task["id"])["state"] for name, task in low.items()}
    assert states == {"a": "PENDING", "b": "RUNNING", "c": "PENDING", "d": "RUNNING"}, states
    by_id = {task["id"]: name for name, task in low.items()}
    preempted = [by_id[e["object"]["id"]] for e in cluster.events(since) if e["type"] == "task.preempted"]
    assert preempted == ["a", "c"]
    _clear(cluster)


def test_a_failed_replica_fails_its_gang_and_a_lost_node_requeues_it(two_nodes: LiveCluster) -> None:
    """Last of the shared cluster's tests: it kills w2."""
    cluster = two_nodes
    # Replica 1 fails at once; replica 0 would run for ten minutes: the gang fails as a whole.
    script = 'test "$ORCH_REPLICA" = 0 && sleep 600'
    bad = cluster.submit(_gang("bad", 2, 3000, ["sh", "-c", script]))
    cluster.wait_until(
        lambda: all(r["state"] == "FAILED" for r in _replicas(cluster, bad)), timeout=30, what="gang bad failed"
    )
    first, second = _replicas(cluster, bad)
    assert second["exit_code"] == 1 and first["reason"].startswith(f"gang {bad['id']}: replica 1 failed"), first
    _clear(cluster)
    # One replica per node; a node lost sends both back, and the gang runs again when room returns.
    good = cluster.submit(_gang("good", 2, 3000, ["sleep", "600"]))
    cluster.wait_until(
        lambda: all(r["state"] == "RUNNING" for r in _replicas(cluster, good)), timeout=20, what="gang good running"
    )
    cluster.kill_worker("w2")
    cluster.wait_until(
        lambda: all(r["state"] == "PENDING" for r in _replicas(cluster, good)), timeout=30, what="gang good requeued"
    )
    assert cluster.nodes()["w1"]["tasks"] == []  # the survivor gave its room back: the gang holds nothing
    cluster.start_worker("w3", cpu=4000, memory=8192)
    cluster.wait_until(
        lambda: all(r["state"] == "RUNNING" for r in _replicas(cluster, good)), timeout=30, what="gang good again"
    )
    assert sorted(r["node_id"] for r in _replicas(cluster, good)) == ["w1", "w3"]
    assert all(r["attempts"] == 2 for r in _replicas(cluster, good))
