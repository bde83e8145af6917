"""The docker runtime on a real engine: limits enforced, logs kept, restarts adopt containers."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import docker
import pytest

pytestmark = pytest.mark.live

README_BODY = (
    '{"name":"test-task","image":"alpine","command":["echo","hello world"],"resources":{"cpu":500,"memory":256}}'
)


@pytest.fixture
def docker_cluster(cluster_factory, docker_engine):  # type: ignore[no-untyped-def]
    cluster = cluster_factory(lease_ttl=10)
    cluster.docker_host = docker_engine
    cluster.start_master()
    cluster.start_worker("d1", cpu=2000, memory=2048, runtime="docker")
    client = docker.DockerClient(base_url=docker_engine)
    yield cluster, client
    leftovers = client.api.containers(all=True, filters={"label": "orch.node=d1"})
    client.close()
    assert leftovers == [], f"containers left behind: {[c['Names'] for c in leftovers]}"


def test_readme_example_in_a_real_container(docker_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, _ = docker_cluster
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            f"{cluster.url}/api/v1/tasks",
            "-H",
            "Content-Type: application/json",
            "-d",
            README_BODY,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    task = json.loads(out.stdout)
    done = cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["state"] == "COMPLETED" and done["exit_code"] == 0, done
    assert "hello world" in cluster.http.get(f"/api/v1/tasks/{task['id']}/logs").text


def test_memory_limit_is_enforced(docker_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, _ = docker_cluster
    # The shell keeps 200 MB in a variable; the container may have 32 MiB.
    task = cluster.submit(
        {
            "name": "hog",
            "image": "alpine",
            "command": ["sh", "-c", 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
            "resources": {"cpu": 500, "memory": 32},
        }
    )
    done = cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["state"] == "FAILED", done
    assert "OOMKilled" in done["reason"] and "32 MiB" in done["reason"]
    assert "survived" not in cluster.http.get(f"/api/v1/tasks/{task['id']}/logs").text


def test_cpu_limit_shows_in_docker_inspect(docker_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, client = docker_cluster
    task = cluster.submit(
        {"name": "cpu", "image": "alpine", "command": ["sleep", "30"], "resources": {"cpu": 500, "memory": 64}}
    )
    cluster.wait_for_state(task["id"], {"RUNNING"}, timeout=60)
    [container] = client.containers.list(filters={"label": f"orch.task={task['id']}"})
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000  # 500 millicores = half a CPU
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NetworkMode"] == "none"
    assert container.labels["orch.node"] == "d1" and container.labels["orch.attempt"] == "1"
    assert cluster.http.delete(f"/api/v1/tasks/{task['id']}").status_code == 204
    cluster.wait_until(
        # The low-level list: the SDK's inspects each container it lists, and one removed in
        # between raised NotFound (a CI run's failure).
        lambda: not client.api.containers(all=True, filters={"label": f"orch.task={task['id']}"}),
        timeout=20,
        what="container removed after delete",
    )


def test_missing_image_fails_with_a_reason(docker_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, _ = docker_cluster
    task = cluster.submit(
        {"name": "nope", "image": "no-such-image:1", "command": ["true"], "resources": {"cpu": 100, "memory": 16}}
    )
    done = cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["state"] == "FAILED"
    assert "no-such-image:1" in done["reason"] and "not present" in done["reason"]


def test_restarted_worker_adopts_its_containers(docker_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, client = docker_cluster
    task = cluster.submit(
        {
            "name": "long",
            "image": "alpine",
            "command": ["sh", "-c", "sleep 4; echo finished"],
            "resources": {"cpu": 100, "memory": 32},
        }
    )
    cluster.wait_for_state(task["id"], {"RUNNING"}, timeout=60)
    cluster.kill_worker("d1", signal.SIGKILL)  # the container lives on in the engine
    assert len(client.containers.list(filters={"label": f"orch.task={task['id']}"})) == 1
    cluster.start_worker("d1", cpu=2000, memory=2048, runtime="docker", wait=False)
    done = cluster.wait_for_state(task["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["state"] == "COMPLETED" and done["attempts"] == 1, done  # adopted, not rerun
    assert "finished" in cluster.http.get(f"/api/v1/tasks/{task['id']}/logs").text
    time.sleep(0.5)
    assert client.api.containers(all=True, filters={"label": f"orch.task={task['id']}"}) == []
