"""A drain can be undone, and a node whose worker is gone can be forgotten.

An operator's audit: a drain was one-way (the cordon even survives re-registration) and a
NOT_READY node stayed listed for ever, counting as a node that could still hold a task.
``kubectl uncordon`` and ``kubectl delete node`` have their equivalents here.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from typing import IO

import httpx
import pytest

from orchlive.__main__ import main
from tests.live.harness import LiveCluster

pytestmark = pytest.mark.live


def _cli(cluster: LiveCluster, capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    status = main(["--master", cluster.url, *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_drained_node_is_uncordoned_and_takes_tasks_again(cluster_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=1000, memory=512)
    assert _cli(cluster, capsys, "drain", "w1")[1] == "node/w1 drained (DRAINING)\n"
    waiting = cluster.submit({"name": "waits", "command": ["true"]})
    assert cluster.task(waiting["id"])["state"] == "PENDING"
    assert _cli(cluster, capsys, "uncordon", "w1")[1] == "node/w1 uncordoned (READY)\n"
    assert cluster.wait_for_state(waiting["id"], {"COMPLETED"})["node_id"] == "w1"
    kinds = [e["type"] for e in cluster.events(until_idle=0.3)]
    assert kinds.index("node.drained") < kinds.index("node.uncordoned")
    assert _cli(cluster, capsys, "uncordon", "nope")[2] == "error: uncordon: node nope not found\n"


def test_a_node_whose_worker_is_gone_can_be_removed_and_only_then(cluster_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=1000, memory=512)
    cluster.start_worker("w2", cpu=1000, memory=512)
    status, _, err = _cli(cluster, capsys, "remove-node", "w1")
    assert status == 2 and err.startswith("error: remove-node: node w1 is alive: stop its worker first"), err
    cluster.kill_worker("w1")
    LiveCluster.wait_until(lambda: cluster.node_state("w1") == "NOT_READY", timeout=30, what="w1 lost")
    assert _cli(cluster, capsys, "remove-node", "w1")[1] == "node/w1 removed\n"
    assert set(cluster.nodes()) == {"w2"}
    assert httpx.delete(f"{cluster.url}/api/v1/nodes/w1").status_code == 404
    assert "node.removed" in [e["type"] for e in cluster.events(until_idle=0.3)]
    # The name is free again: a new worker registers under it, with an empty ledger.
    cluster.start_worker("w1", cpu=1000, memory=512)
    task = cluster.submit({"name": "after", "command": ["true"], "node_selector": {}})
    assert cluster.wait_for_state(task["id"], {"COMPLETED"})["state"] == "COMPLETED"
    assert cluster.nodes()["w1"]["allocated"]["cpu"] == 0


class _Lines:
    """A child's output read by one thread, line by line: wait for a line, no fixed sleeps."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.queue.put(line.decode()) for line in stream], daemon=True).start()

    def until(self, wanted: str, timeout: float) -> None:
        """Read until a line contains ``wanted``."""
        deadline = time.monotonic() + timeout
        while not any(wanted in line for line in self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {wanted!r} in {timeout} s: {self.seen[-5:]}")
            with contextlib.suppress(queue.Empty):
                self.seen.append(self.queue.get(timeout=min(left, 0.5)))


def test_events_follow_resumes_across_a_master_restart(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # `events -f` used to end silently (status 0) when its master went away, and miss what came after.
    cluster = cluster_factory()
    port = cluster.start_master()
    follower = subprocess.Popen(
        [sys.executable, "-m", "orchlive", "--master", cluster.url, "events", "-f", "-o", "json", "--since", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cluster._env(),
    )
    assert follower.stdout is not None
    lines = _Lines(follower.stdout)
    try:
        before = cluster.submit({"name": "before", "command": ["true"]})["id"]
        lines.until(before, timeout=30)  # it follows: then the master goes
        cluster.kill_master(port)
        cluster.start_master(port)
        after = cluster.submit({"name": "after", "command": ["true"]})["id"]
        lines.until(after, timeout=30)
    finally:
        follower.terminate()
        _, err = follower.communicate(timeout=10)
    events = [json.loads(line) for line in lines.seen]
    created = [e["object"]["id"] for e in events if e["type"] == "task.created"]
    assert created == [before, after], (created, err.decode()[-1000:])
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))  # each event once, in order
    assert "resuming after event" in err.decode()


def test_a_submission_to_a_cluster_without_workers_says_it_will_wait(cluster_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    status, out, err = _cli(cluster, capsys, "submit", "--name", "early", "--", "true")
    assert status == 0 and out.strip()  # accepted: its id
    assert err == "warning: no worker has registered yet; it stays PENDING until one joins\n"
