"""Highly available masters: kill -9 of the leader; a standby takes over; every task runs exactly once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.live


def test_leader_killed_while_tasks_are_pending(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy="first_fit", lease_ttl=3, leader_ttl=2)
    ports = [cluster.start_master() for _ in range(3)]
    cluster.wait_until(lambda: len(cluster.leader_ports()) == 1, timeout=15, what="one leader")
    leader = cluster.leader_ports()[0]
    cluster.start_worker("w1", cpu=2000, memory=4096)
    out = tmp_path / "runs.txt"
    names = [f"t{i}" for i in range(8)]
    # Two fit at a time: six stay pending behind them while the leader dies.
    ids = [
        cluster.submit(
            {
                "name": n,
                "image": "alpine",
                "command": ["sh", "-c", f"sleep 1; echo {n} >> {out}"],
                "resources": {"cpu": 1000, "memory": 256},
            }
        )["id"]
        for n in names
    ]
    cluster.wait_until(
        lambda: sum(t["state"] == "RUNNING" for t in cluster.tasks()) == 2, timeout=10, what="two tasks running"
    )
    killed = time.monotonic()
    cluster.kill_master(leader, signal.SIGKILL)
    cluster.wait_until(lambda: len(cluster.leader_ports()) == 1, timeout=2 + 5, what="a new leader")
    assert time.monotonic() - killed < 2 + 5
    assert cluster.leader_ports()[0] in set(ports) - {leader}
    for task_id in ids:
        assert cluster.wait_for_state(task_id, {"COMPLETED", "FAILED"}, timeout=40)["state"] == "COMPLETED"
    assert Counter(out.read_text().split()) == Counter(names), "a task ran twice or never"
    completed = Counter(e["object"]["id"] for e in cluster.events(0) if e["type"] == "task.completed")
    assigned = Counter(e["object"]["id"] for e in cluster.events(0) if e["type"] == "task.assigned")
    assert completed == Counter(ids) and assigned == Counter(ids)


def test_two_masters_racing_never_double_assign(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # Both masters mirror the same pending tasks; the standby does not schedule, and even when
    # leadership moves, compare-and-swap lets each task be assigned once.
    cluster = cluster_factory(policy="spread", leader_ttl=2)
    ports = [cluster.start_master(), cluster.start_master()]
    cluster.start_worker("w1", cpu=64000, memory=65536)
    cluster.start_worker("w2", cpu=64000, memory=65536)
    ids = [
        cluster.submit(
            {"name": f"r{i}", "image": "alpine", "command": ["true"], "resources": {"cpu": 10, "memory": 1}}
        )["id"]
        for i in range(60)
    ]
    for task_id in ids:
        cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=40)
    assigned = Counter(e["object"]["id"] for e in cluster.events(0) if e["type"] == "task.assigned")
    assert assigned == Counter(ids)
    _resent_after_a_frozen_master(cluster, ports)


def _resent_after_a_frozen_master(cluster, ports: list[int]) -> None:  # type: ignore[no-untyped-def]
    """A POST times out against a frozen master and goes to the other: one task with an Idempotency-Key.

    Without a key the frozen master, once thawed, still serves the POST it had received: a
    second task (what the fault campaign saw three times); with one, the late POST finds the first.
    """
    frozen = next(p for p in ports if p not in cluster.leader_ports())
    for key, copies in ((None, 2), ("resent-1", 1)):
        body = {"name": f"resent-{key}", "command": ["true"], "resources": {"cpu": 10, "memory": 1}}
        headers = {"Idempotency-Key": key} if key else {}
        cluster.masters[frozen].send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(httpx.TimeoutException):
                httpx.post(f"http://127.0.0.1:{frozen}/api/v1/tasks", json=body, headers=headers, timeout=1)
            other = next(p for p in ports if p != frozen)
            resent = httpx.post(f"http://127.0.0.1:{other}/api/v1/tasks", json=body, headers=headers, timeout=10)
            assert resent.status_code == 201, resent.text
        finally:
            cluster.masters[frozen].send_signal(signal.SIGCONT)
        name = body["name"]
        cluster.wait_until(lambda n=name, c=copies: _named(cluster, n) == c, timeout=10, what=f"{copies} x {name}")
        time.sleep(2.0)  # the thawed master's late POST: served within this (the keyless one shows it)
        assert _named(cluster, name) == copies


def _named(cluster, name: str) -> int:  # type: ignore[no-untyped-def]
    return sum(t["name"] == name for t in cluster.tasks())
