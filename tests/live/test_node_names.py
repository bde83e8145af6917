"""One node name, one worker: a twin is refused, a bad name is refused up front.

An operator's audit started two workers with ``--name twin`` (different data dirs): both
registered, the cluster listed one node, and a task placed on it ran twice at the same
time. A name holding ``/`` was accepted, stored where the master never looks, and tasks
selecting it waited for ever.
"""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.live.harness import LiveCluster

pytestmark = pytest.mark.live


def _worker(cluster: LiveCluster, name: str, data_dir: Path, log: str) -> subprocess.Popen[bytes]:
    args = ["worker", "--name", name, "--cpu", "1000", "--memory", "512", "--lease-ttl", str(cluster.lease_ttl)]
    return cluster._spawn([*args, "--data-dir", str(data_dir), "--metrics-port", "0"], log)


def _exit_of(child: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        raise AssertionError(f"still running after {timeout} s") from None


def test_a_second_worker_under_a_live_name_is_refused_and_the_first_keeps_it(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("twin", cpu=1000, memory=512)
    twin = _worker(cluster, "twin", tmp_path / "elsewhere", "twin2.log")
    assert _exit_of(twin, timeout=cluster.lease_ttl + 20) == 2
    log = (cluster.work_dir / "twin2.log").read_text()
    assert "--name: node name 'twin' is held by another live worker" in log, log[-2000:]
    assert "Traceback" not in log
    assert cluster.node_state("twin") == "READY"
    task = cluster.submit({"name": "once", "command": ["true"]})
    assert cluster.wait_for_state(task["id"], {"COMPLETED"})["node_id"] == "twin"


def test_one_data_dir_serves_one_worker_process(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("solo", cpu=1000, memory=512)
    second = _worker(cluster, "solo", cluster.work_dir, "solo2.log")
    assert _exit_of(second, timeout=30) == 2
    log = (cluster.work_dir / "solo2.log").read_text()
    assert "--data-dir:" in log and "in use by another worker process" in log, log[-2000:]


@pytest.mark.parametrize("name", ["solo/evil", "lead-", "a b", ""])
def test_a_name_that_cannot_name_a_node_is_refused_at_once(cluster_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    child = _worker(cluster, name, cluster.work_dir, "bad.log")
    assert _exit_of(child, timeout=30) == 2
    log = (cluster.work_dir / "bad.log").read_text()
    assert f"--name: {name!r} cannot name a node" in log, log[-2000:]


def test_a_lost_node_shows_its_last_heartbeat_not_its_registration(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # The API read a lost node's heartbeat from its record, written at registration: a node
    # that beat for minutes and then died looked as if it died the moment it registered.
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("beating", cpu=1000, memory=512)
    registered_at = datetime.fromisoformat(cluster.nodes()["beating"]["registered_time"]).timestamp()
    LiveCluster.wait_until(  # a few beats (every TTL / 4) past its registration, however slow the host
        lambda: time.time() > registered_at + 2.0, timeout=30, what="a few beats"
    )
    killed = time.time()
    cluster.kill_worker("beating")
    LiveCluster.wait_until(
        lambda: any(e["type"] == "node.lost" for e in cluster.events(until_idle=0.2)), timeout=30, what="node.lost"
    )
    node = cluster.nodes()["beating"]
    assert node["state"] == "NOT_READY"
    registered = datetime.fromisoformat(node["registered_time"]).timestamp()
    last = datetime.fromisoformat(node["last_heartbeat"]).timestamp()
    assert registered + 1.5 < last <= killed + 0.5, (node["registered_time"], node["last_heartbeat"])


def test_a_worker_that_finds_its_name_taken_when_it_returns_stops(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The holder freezes past its lease; a twin (another data dir) waits for that lease to go
    # and takes the name. When the holder thaws, its re-registration is refused: it must stop
    # (exit 2), not go on serving the twin's inbox beside it.
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("held", cpu=1000, memory=512)
    holder = cluster.workers["held"]
    holder.send_signal(signal.SIGSTOP)
    twin = _worker(cluster, "held", tmp_path / "elsewhere", "twin.log")
    try:
        LiveCluster.wait_until(
            lambda: "registered" in (cluster.work_dir / "twin.log").read_text(),
            timeout=30,
            what="the twin's registration",
        )
    finally:
        holder.send_signal(signal.SIGCONT)
    assert _exit_of(holder, timeout=30) == 2
    cluster.workers.pop("held")
    log = (cluster.work_dir / "held.log").read_text()
    assert "node name 'held' is held by another live worker" in log, log[-2000:]
    assert twin.poll() is None  # the twin serves on
    twin.terminate()
    twin.wait(timeout=10)
