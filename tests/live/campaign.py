"""The fault campaign's moving parts: a client that tries every master, a subscriber that switches masters, faults.

Used by ``test_campaign.py``. Everything runs against a ``LiveCluster`` on a real
multi-member etcd (``orchlive.etcd_cluster``); every process signalled was started by
the harness, by PID.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from orchlive.etcd_cluster import EtcdCluster

from .harness import LiveCluster


class AnyMaster:
    """Requests to whichever master answers: a frozen or dead one is skipped after a short timeout."""

    def __init__(self, cluster: LiveCluster, timeout: float = 3.0) -> None:
        self.cluster = cluster
        self.timeout = timeout

    def request(self, method: str, path: str, *, within: float = 60.0, **kwargs: Any) -> httpx.Response:
        """The first answer that is not a 5xx, trying each master in turn for up to ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            for port in list(self.cluster.masters):
                try:
                    reply = httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=self.timeout, **kwargs)
                except httpx.HTTPError:
                    continue
                if reply.status_code < 500:
                    return reply
            if time.monotonic() > deadline:
                raise AssertionError(f"no master answered {method} {path} within {within} s")
            time.sleep(0.2)

    def tasks(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v1/tasks", params={"limit": 10000}).json()

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in self.request("GET", "/api/v1/nodes").json()}


@dataclass
class Subscriber:
    """Reads ``/api/v1/events`` from one master, then the next, resuming each time with ``Last-Event-ID``."""

    cluster: LiveCluster
    switch_every: float = 4.0
    events: list[dict[str, Any]] = field(default_factory=list)
    switches: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def last_id(self) -> int:
        return int(self.events[-1]["id"]) if self.events else 0

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            ports = sorted(self.cluster.masters)
            if not ports:
                time.sleep(0.2)
                continue
            port = ports[turn % len(ports)]
            turn += 1
            self.switches += 1
            self._read(port)

    def _read(self, port: int) -> None:
        """Read one master's stream until it is time to switch, it goes quiet, or it fails."""
        began = time.monotonic()
        headers = {"Last-Event-ID": str(self.last_id)}
        timeout = httpx.Timeout(3.0, read=2.0)
        try:
            with httpx.stream("GET", f"http://127.0.0.1:{port}/api/v1/events", headers=headers, timeout=timeout) as s:
                if s.status_code != 200:
                    time.sleep(0.2)
                    return
                for line in s.iter_lines():
                    if line.startswith("data:"):
                        self.events.append(json.loads(line[5:]))
                    if self.stop.is_set() or time.monotonic() - began > self.switch_every:
                        return
        except httpx.HTTPError:
            time.sleep(0.1)


@dataclass
class Faults:
    """The faults the campaign injects, each healed before it returns; counts what was done."""

    cluster: LiveCluster
    etcd: EtcdCluster
    client: AnyMaster
    rng: random.Random
    lease_ttl: float
    grace: float
    long_names: set[str] = field(default_factory=set)  # tasks that outlive a lease and the grace
    deleted: set[str] = field(default_factory=set)
    done: list[str] = field(default_factory=list)

    def worker_kill_9(self) -> None:
        name = self.rng.choice(sorted(self.cluster.workers))
        self.cluster.kill_worker(name, signal.SIGKILL)
        time.sleep(self.lease_ttl + 1)
        self.cluster.start_worker(name, wait=False)
        self.done.append(f"kill -9 {name}")

    def worker_freeze(self) -> None:
        """SIGSTOP beyond the lease and the grace: the master reruns the tasks elsewhere meanwhile.

        The worker that started a long task (``long_names``) last, else the busiest: the fault is
        there to meet a copy that would still be running when the master reruns it.
        """
        running = [t for t in self.client.tasks() if t["state"] == "RUNNING" and t["node_id"] in self.cluster.workers]
        long = sorted((t for t in running if t["name"] in self.long_names), key=lambda t: t["start_time"] or "")
        nodes = [t["node_id"] for t in running]
        name = long[-1]["node_id"] if long else max(sorted(self.cluster.workers), key=nodes.count)
        child = self.cluster.workers[name]
        child.send_signal(signal.SIGSTOP)
        try:
            time.sleep(self.lease_ttl + self.grace + 2)
        finally:
            child.send_signal(signal.SIGCONT)
        self.done.append(f"SIGSTOP {name}")

    def _leader(self) -> int:
        """The leading master's port, once one leads (a fault with nothing to hit must not pass as done)."""
        leaders: list[int] = []

        def found() -> bool:
            leaders[:] = self.cluster.leader_ports()
            return len(leaders) == 1

        self.cluster.wait_until(found, timeout=30, what="a leading master to fault")
        return leaders[0]

    def leader_kill_9(self) -> None:
        port = self._leader()
        self.cluster.kill_master(port, signal.SIGKILL)
        time.sleep(2)
        self.cluster.start_master(port)
        self.done.append(f"kill -9 leader {port}")

    def leader_freeze(self) -> None:
        port = self._leader()
        child = self.cluster.masters[port]
        child.send_signal(signal.SIGSTOP)
        try:
            time.sleep(self.cluster.leader_ttl + 3)
        finally:
            child.send_signal(signal.SIGCONT)
        self.done.append(f"SIGSTOP leader {port}")

    def etcd_member_restart(self) -> None:
        """Kill and restart etcd's raft leader: every write of every process goes through it."""
        index = raft_leader(self.etcd)
        self.etcd.kill(index)
        time.sleep(4)
        self.etcd.start_member(index)
        self.etcd.wait_healthy(timeout=60)
        self.done.append(f"etcd m{index} (raft leader) kill/restart")

    def delete_running(self, count: int = 3) -> None:
        """Delete up to ``count`` running tasks, once some run (up to 30 s); done only if one was deleted."""
        running: list[str] = []

        def some_run() -> bool:
            running[:] = [t["id"] for t in self.client.tasks() if t["state"] == "RUNNING"]
            return bool(running)

        with contextlib.suppress(AssertionError):  # none ran in time: counted as not done, and the test says so
            self.cluster.wait_until(some_run, timeout=30, what="a running task to delete")
        deleted = 0
        for task_id in self.rng.sample(running, min(count, len(running))):
            if self.client.request("DELETE", f"/api/v1/tasks/{task_id}").status_code == 204:
                self.deleted.add(task_id)
                deleted += 1
        if deleted:
            self.done.append(f"delete {deleted} running")


def raft_leader(etcd: EtcdCluster, timeout: float = 30) -> int:
    """The index of etcd's raft leader among the running members, once one leads (an election may be under way)."""
    leader: list[int] = []

    def found() -> bool:
        leader[:] = [i] if (i := _one_raft_leader(etcd)) is not None else []
        return bool(leader)

    LiveCluster.wait_until(found, timeout=timeout, what="a single etcd raft leader", interval=0.2)
    return leader[0]


def _one_raft_leader(etcd: EtcdCluster) -> int | None:
    """The raft leader's index if the running members agree on exactly one (maintenance status, over HTTP)."""
    statuses = {}
    for index, member in enumerate(etcd.members):
        if member.process is None or member.process.poll() is not None:
            continue
        try:
            reply = httpx.post(f"http://{member.endpoint}/v3/maintenance/status", json={}, timeout=3).json()
        except (httpx.HTTPError, ValueError):
            continue
        statuses[index] = (reply["header"]["member_id"], reply.get("leader"))
    leaders = [index for index, (member_id, leader) in statuses.items() if member_id == leader]
    return leaders[0] if len(leaders) == 1 else None


def run_schedule(steps: list[Callable[[], None]], gap: float) -> None:
    """Each fault in turn, ``gap`` seconds apart."""
    for step in steps:
        step()
        time.sleep(gap)
