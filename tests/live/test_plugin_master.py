"""The README's custom policy, in a file outside the package, placing tasks on a live master."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

README_POLICY = '''\
from orchsim.scheduling import policy


@policy("fewest_tasks_then_emptiest", pure=True)
def fewest_tasks_then_emptiest(nodes, request):
    """Higher is better; computed as if the task were placed; never mutate nodes."""
    cpu = nodes.row("cpu")
    return -nodes.tasks - (nodes.allocated[cpu] + request[cpu]) * nodes.inv_capacity[cpu]
'''


def sleeper(i: int) -> dict:
    return {"name": f"s{i}", "image": "alpine", "command": ["sleep", "30"], "resources": {"cpu": 500, "memory": 64}}


def test_master_places_with_a_plugin_policy(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "custom.py"
    plugin.write_text(README_POLICY)
    cluster = cluster_factory(policy="fewest_tasks_then_emptiest")
    cluster.start_master(extra=["--plugin", str(plugin)])
    for name in ("w1", "w2", "w3"):
        cluster.start_worker(name, cpu=4000, memory=8192)
    # One at a time, each placed before the next: fewest tasks first, so three nodes, not one
    # (bin_packing, the default, would stack all three on the same node).
    nodes = []
    for i in range(3):
        task = cluster.submit(sleeper(i))
        placed = cluster.wait_for_state(task["id"], {"ASSIGNED", "RUNNING"})
        nodes.append(placed["node_id"])
    assert sorted(nodes) == ["w1", "w2", "w3"], nodes


def test_master_takes_policy_parameters(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # bin_packing weighted entirely on memory: a memory-heavy node fills first. w1 has more
    # cpu free relative to capacity after the first task, but only memory counts.
    cluster = cluster_factory(policy="bin_packing")
    cluster.start_master(extra=["--policy-param", "weights.cpu=0", "--policy-param", "weights.memory=1"])
    cluster.start_worker("w1", cpu=8000, memory=1024)
    cluster.start_worker("w2", cpu=1000, memory=8192)
    # 500 cpu, 512 memory: on w1 memory goes to 50%, on w2 to 6%: memory-only packing picks w1.
    # The Go weights (0.7 cpu) would pick w2 (cpu 50% there vs 6% on w1).
    task = cluster.submit(
        {"name": "m", "image": "alpine", "command": ["sleep", "5"], "resources": {"cpu": 500, "memory": 512}}
    )
    assert cluster.wait_for_state(task["id"], {"ASSIGNED", "RUNNING"})["node_id"] == "w1"


def test_dev_cluster_takes_a_plugin(etcd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from orchlive.etcd_server import free_port

    plugin = tmp_path / "custom.py"
    plugin.write_text(README_POLICY)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    args = ["dev", "--workers", "2", "--port", str(port), "--plugin", "custom.py"]
    dev = subprocess.Popen(
        [sys.executable, "-m", "orchlive", *args, "--policy", "fewest_tasks_then_emptiest"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        ready = False
        while time.monotonic() < deadline and not ready:
            try:
                nodes = httpx.get(f"{url}/api/v1/nodes", timeout=2).json()
                ready = len(nodes) == 2 and all(n["state"] == "READY" for n in nodes)
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        assert ready, "dev cluster did not come up"
        placed = []
        for i in range(2):
            task = httpx.post(f"{url}/api/v1/tasks", json=sleeper(i), timeout=5).json()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                state = httpx.get(f"{url}/api/v1/tasks/{task['id']}", timeout=5).json()
                if state["node_id"]:
                    placed.append(state["node_id"])
                    break
                time.sleep(0.2)
        assert sorted(placed) == ["w1", "w2"]  # fewest tasks first: one each
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()


FLAKY_POLICY = '''\
from orchsim.scheduling import policy


@policy("flaky")
def flaky(nodes, request):
    """Fewest tasks first; raises on a request above 1000 millicores (a user's bug)."""
    if request[nodes.row("cpu")] > 1000:
        raise IndexError("bug in my policy")
    return -nodes.tasks.astype(float)
'''


def test_a_policy_that_raises_sets_its_task_aside_and_the_master_goes_on(  # type: ignore[no-untyped-def]
    cluster_factory, tmp_path: Path
) -> None:
    """The exception used to end the scheduling loop: the API served on, nothing more was placed, no log line."""
    plugin = tmp_path / "flaky.py"
    plugin.write_text(FLAKY_POLICY)
    cluster = cluster_factory(policy="flaky")
    port = cluster.start_master(extra=["--plugin", str(plugin)])
    cluster.start_worker("w1", cpu=8000, memory=8192)
    before = cluster.submit(sleeper(0))
    assert cluster.wait_for_state(before["id"], {"ASSIGNED", "RUNNING"})["node_id"] == "w1"
    bad = cluster.submit(sleeper(1) | {"resources": {"cpu": 2000, "memory": 64}})
    after = cluster.submit(sleeper(2))  # behind it in the queue (fifo): placed all the same
    assert cluster.wait_for_state(after["id"], {"ASSIGNED", "RUNNING"})["node_id"] == "w1"
    cluster.wait_until(lambda: "raised" in (cluster.task(bad["id"]).get("reason") or ""), timeout=20, what="reason")
    task = cluster.task(bad["id"])
    expected = "policy flaky raised IndexError: bug in my policy (set aside until the cluster changes)"
    assert task["state"] == "PENDING" and task["reason"] == expected, task
    log = (cluster.work_dir / f"master-{port}.log").read_text()
    assert f"task {bad['id']}: policy flaky raised IndexError: bug in my policy" in log
    # A worker joining changes the cluster: the task is tried again (and fails again, visibly).
    cluster.start_worker("w2", cpu=8000, memory=8192)
    assert cluster.task(bad["id"])["state"] == "PENDING"
    assert cluster.http.get("/health").json()["leader"] is True  # it led all along


ZONAL_FILTER = '''\
from orchsim.scheduling import filter


@filter("zonal")
def zonal(nodes, request, task):
    """Nodes in the task's zone; a user's bug: a task without a selector has none."""
    return nodes.label_mask({"zone": task.node_selector["zone"]})
'''


def test_a_filter_that_raises_is_named_in_the_reason(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The reason named the policy for any exception in a pass: ``policy bin_packing raised KeyError``."""
    plugin = tmp_path / "zonal.py"
    plugin.write_text(ZONAL_FILTER)
    cluster = cluster_factory()
    cluster.start_master(extra=["--plugin", str(plugin), "--filters", "{zonal: {}}"])
    cluster.start_worker("w1", cpu=8000, memory=8192)
    bad = cluster.submit(sleeper(0))
    cluster.wait_until(lambda: "raised" in (cluster.task(bad["id"]).get("reason") or ""), timeout=20, what="reason")
    reason = cluster.task(bad["id"])["reason"]
    assert reason.startswith("filter 'zonal' raised TypeError: ") and reason.endswith(
        "(set aside until the cluster changes)"
    )


SLOW_POLICY = '''\
import time

from orchsim.scheduling import policy


@policy("slow")
def slow(nodes, request):
    """Fewest tasks first, after a long think (a user's policy that blocks the master's loop)."""
    time.sleep(1.2)
    return -nodes.tasks.astype(float)
'''


def test_a_slow_policy_is_named_in_the_masters_log(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A decision that blocks the loop stalls the API, the watch and the leadership lease: the log says by what."""
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_POLICY)
    cluster = cluster_factory(policy="slow")
    port = cluster.start_master(extra=["--plugin", str(plugin)])
    cluster.start_worker("w1", cpu=8000, memory=8192)
    task = cluster.submit(sleeper(0))
    cluster.wait_for_state(task["id"], {"ASSIGNED", "RUNNING", "COMPLETED"}, timeout=30)
    log = cluster.work_dir / f"master-{port}.log"
    cluster.wait_until(lambda: "(policy slow)" in log.read_text(), timeout=10, what="the warning")
    assert re.search(r"a pass took \d+\.\d s deciding \d+ tasks \(policy slow\)", log.read_text())
